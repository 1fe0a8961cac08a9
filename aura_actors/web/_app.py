"""The Quart-Trio application: REST, SSE and WebSocket views of one runtime."""

from __future__ import annotations

import logging
import time
from typing import Any

from quart import Response, g, request
from quart_schema import Info, QuartSchema
from quart_trio import QuartTrio

from .. import __version__
from ..runtime import Runtime
from ._auth import Authenticator
from ._context import ServerContext
from ._cors import install_cors
from ._errors import install_error_handlers
from ._pages import register_page_routes
from ._rest import register_rest_routes
from ._settings import ServerSettings
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
    app.json.sort_keys = False  # type: ignore[attr-defined]
    QuartSchema(
        app,
        openapi_path="/openapi.json",
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        info=Info(title="aura-actors", version=__version__),
    )
    context = ServerContext(runtime, settings, Authenticator(tokens))
    install_error_handlers(app)
    install_cors(app, settings.cors_origins)
    _install_request_log(app)
    register_rest_routes(app, context)
    register_sse_routes(app, context)
    register_ws_routes(app, context)
    register_page_routes(app, context)
    return app


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
