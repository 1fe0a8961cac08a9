"""CORS: answer preflights and allow only the configured origins."""

from __future__ import annotations

from collections.abc import Iterable

from quart import Quart, Response, request

ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Last-Event-ID, Cache-Control"
EXPOSED_HEADERS = "Location"
PREFLIGHT_MAX_AGE = "600"


def install_cors(app: Quart, origins: Iterable[str]) -> None:
    """Add CORS handling for ``origins`` to every route of ``app``."""
    allowed = frozenset(origin.rstrip("/") for origin in origins)

    @app.before_request
    async def _preflight() -> Response | None:
        if request.method != "OPTIONS":
            return None
        response = Response(b"", status=204)
        origin = request.headers.get("Origin")
        if origin in allowed and request.headers.get("Access-Control-Request-Method"):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        response.headers["Vary"] = "Origin"
        return response

    @app.after_request
    async def _allow_origin(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.vary.add("Origin")
        return response
