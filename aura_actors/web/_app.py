"""The Quart-Trio application: REST, SSE and WebSocket views of one runtime."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from quart import Response, g, request
from quart_schema import Info, QuartSchema
from quart_trio import QuartTrio

from .. import __version__
from ..runtime import Runtime
from ._auth import Authenticator
from ._context import ServerContext
from ._cors import install_cors
from ._errors import install_error_handlers
from ._openapi import ApiDocsProvider
from ._pages import register_page_routes
from ._rest import register_rest_routes
from ._settings import ServerSettings
from ._sse_asgi import SseFastPath
from ._sse_routes import register_sse_routes
from ._ws_routes import register_ws_routes

#: Request bodies above this answer 413.
MAX_BODY_BYTES = 1024 * 1024

request_logger = logging.getLogger("aura_actors.requests")


def create_app(
    runtime: Runtime, settings: ServerSettings, tokens: dict[str, str] | None = None
) -> QuartTrio:
    """Build the app serving ``runtime``. ``tokens`` (token → user) turns auth on."""
    app = QuartTrio(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        RESPONSE_TIMEOUT=None,
        BODY_TIMEOUT=30,
        JSON_SORT_KEYS=False,
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    QuartSchema(
        app,
        openapi_path="/openapi.json",
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        info=Info(
            title="aura-actors",
            version=__version__,
            description="Jobs over REST, their events over Server-Sent Events and "
            "WebSocket (GET /api/jobs/{id}/ws, not listed: OpenAPI has no WebSocket).",
        ),
        openapi_provider_class=ApiDocsProvider,
    )
    # After QuartSchema, which installs its own JSON provider: keep the contract's key order.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    context = ServerContext(runtime, settings, Authenticator(tokens))
    install_error_handlers(app)
    # First: its clock starts before the CORS preflight answers, its line is written last.
    _install_request_log(app)
    install_cors(app, settings.cors_origins)
    _install_no_content_headers(app)
    register_rest_routes(app, context)
    register_sse_routes(app, context)
    register_ws_routes(app, context)
    register_page_routes(app, context)
    app.asgi_app = AsgiGuard(app.asgi_app)  # type: ignore[method-assign]
    # Outermost: a successful SSE stream skips Quart (and the guard, which a GET
    # without a body never needs); anything else falls through to both.
    app.asgi_app = SseFastPath(  # type: ignore[method-assign]
        app.asgi_app, context, settings.cors_origins
    )
    return app


ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


#: How long, and how many body bytes, a response waits for the rest of its request body.
LINGER_SECONDS = 5.0
LINGER_BYTES = 64 * 1024 * 1024


class AsgiGuard:
    """Two fixes between Hypercorn and Quart-Trio, at the ASGI seam.

    1. Every ``send`` the app starts runs to its end, whatever cancels the
       app. Quart-Trio cancels a request's task as soon as it receives
       ``http.disconnect``, and Hypercorn queues that message from inside the
       app's own last ``send`` when it closes a connection; cancelled
       half-way, the close never happened, the connection stayed open with
       its parser stuck, and the client's next request on it hung forever.
       A shielded ``send`` blocks no longer than Hypercorn's own write, which
       is shielded already (and which shutdown cuts, see ``_server``).

    2. A response waits for the rest of its request body (up to
       ``LINGER_SECONDS`` and ``LINGER_BYTES``; Quart reads and drops it
       meanwhile). A 413 is decided from ``Content-Length`` or the first
       MiB, a 401, 404 or 405 never reads the body: answered at once,
       Hypercorn would close the connection while the client is still
       sending, the client's kernel would answer with a reset, and the reset
       destroys the response before the client reads it. Waiting, the client
       reads the answer, and the connection stays usable.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        body_done = trio.Event()
        if scope["type"] == "websocket":
            body_done.set()
        received = 0

        async def tracked_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if not message.get("more_body", False) or received > LINGER_BYTES:
                    body_done.set()
            elif message["type"] == "http.disconnect":
                body_done.set()
            return message

        async def guarded_send(message: Any) -> None:
            kind = message["type"]
            if kind == "websocket.send" or (
                kind == "http.response.body" and message.get("more_body", False)
            ):
                # A streaming chunk (an SSE frame, a WebSocket message) is one write
                # that Hypercorn already shields, and it never closes the connection:
                # cancelled, it has either not started or fully happened. No shield.
                await send(message)
                return
            if kind == "http.response.start" and not body_done.is_set():
                with trio.move_on_after(LINGER_SECONDS):
                    await body_done.wait()
            with trio.CancelScope(shield=True):
                await send(message)

        await self.app(scope, tracked_receive, guarded_send)


def _install_no_content_headers(app: QuartTrio) -> None:
    @app.after_request
    async def _strip_body_headers(response: Response) -> Response:
        # RFC 9110 §8.6: no Content-Length in a 204 (nor a body type to go with it).
        if response.status_code == 204:
            response.headers.pop("Content-Length", None)
            response.headers.pop("Content-Type", None)
        return response


def _install_request_log(app: QuartTrio) -> None:
    @app.before_request
    async def _start_clock() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    async def _log_request(response: Response) -> Response:
        started = g.get("request_started")
        fields: dict[str, Any] = {
            "method": request.method,
            # The path only: the query may hold an access token.
            "path": request.path,
            "status": response.status_code,
        }
        if started is not None:
            fields["ms"] = round((time.perf_counter() - started) * 1000, 2)
        request_logger.info("request", extra=fields)
        return response
