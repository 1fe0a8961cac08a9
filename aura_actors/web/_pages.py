"""The web page: plain HTML, CSS and JS served from the package, no build step."""

from __future__ import annotations

from importlib.resources import files

from quart import Quart, Response
from quart_schema import hide

from ._context import ServerContext

_STATIC = files("aura_actors.web") / "static"
_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

#: The page loads nothing from elsewhere: scripts, styles, images and requests stay on
#: this origin (``blob:`` for artifacts opened with a token).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _static(name: str) -> Response:
    resource = _STATIC / name
    if not resource.is_file():
        return Response("not found", status=404, content_type="text/plain")
    response = Response(resource.read_bytes(), content_type=_TYPES[name])
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if name == "index.html":
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


def register_page_routes(app: Quart, context: ServerContext) -> None:
    """Serve the page at ``/`` and its assets at ``/static/<name>``."""

    @app.get("/")
    @hide
    async def index() -> Response:
        return _static("index.html")

    @app.get("/static/<name>")
    @hide
    async def asset(name: str) -> Response:
        if name not in _TYPES:
            return Response("not found", status=404, content_type="text/plain")
        return _static(name)
