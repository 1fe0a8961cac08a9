"""The Quart-Trio application: REST, SSE and WebSocket views of one runtime."""

from __future__ import annotations

import time

from quart import Response, g, request
from quart_schema import Info, QuartSchema
from quart_trio import QuartTrio

from .. import __version__
from ..runtime import Runtime
from ._asgi import App
from ._auth import Authenticator
from ._context import ServerContext
from ._cors import install_cors
from ._errors import install_error_handlers
from ._guards import RequestGuards, install_guards
from ._logging import log_request
from ._metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ._metrics import ServerMetrics
from ._openapi import ApiDocsProvider
from ._pages import register_page_routes
from ._rest import register_rest_routes, register_service_routes
from ._settings import ServerSettings
from ._sse_routes import register_sse_routes
from ._ws_routes import register_ws_routes

#: Request bodies above this answer 413.
MAX_BODY_BYTES = 1024 * 1024


def create_app(
    runtime: Runtime,
    settings: ServerSettings,
    tokens: dict[str, str] | None = None,
    metrics: ServerMetrics | None = None,
) -> QuartTrio:
    """Build the app serving ``runtime``. ``tokens`` (token → user) turns auth on.

    A cluster's ``worker`` node serves only ``/api/health`` and ``/metrics``.

    ``metrics`` should be the runtime's observer too (see ``open_runtime``).
    """
    app = App(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        RESPONSE_TIMEOUT=None,
        BODY_TIMEOUT=30,
        JSON_SORT_KEYS=False,
        PROVIDE_AUTOMATIC_OPTIONS=False,
        AURA_PIPELINES=runtime.pipelines.names(),
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
    context = ServerContext(runtime, settings, Authenticator(tokens), metrics or ServerMetrics())
    install_error_handlers(app)
    # First: its clock starts before the CORS preflight answers, its line is written last.
    _install_request_log(app)
    install_guards(app, RequestGuards(settings.host, settings.allowed_hosts, settings.cors_origins))
    install_cors(app, settings.cors_origins)
    _install_no_content_headers(app)
    if settings.runtime.role != "worker":  # a cluster's worker serves only these two
        register_rest_routes(app, context)
        register_sse_routes(app, context)
        register_ws_routes(app, context)
        register_page_routes(app, context)
    register_service_routes(app, context)
    _register_metrics_route(app, context)
    return app


def _register_metrics_route(app: QuartTrio, context: ServerContext) -> None:
    @app.get("/metrics")
    async def metrics() -> Response:
        """The server's metrics in Prometheus text format (no token needed; nothing personal)."""
        body = await context.metrics.render(context.runtime)
        return Response(body, status=200, content_type=METRICS_CONTENT_TYPE)


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
        log_request(request.method, request.path, response.status_code, g.get("request_started"))
        return response
