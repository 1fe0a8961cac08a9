"""Checks every request passes before a route sees it: Host, Origin, Content-Type.

They defend the default server (no auth, on loopback) against web pages the
user happens to visit (contract section 9):

- **DNS rebinding.** A page on ``evil.example`` whose name is made to resolve
  to 127.0.0.1 reaches a loopback server as a same-origin page and may read
  every answer. Its requests carry ``Host: evil.example``: a server bound to a
  loopback address answers 400 ``invalid_host`` to any ``Host`` that is not a
  loopback name or address, nor one of ``--allowed-host``.
- **Cross-site requests.** A page may POST to any server without a CORS
  preflight when the body is ``text/plain``, a form or multipart: a ``POST``
  body must be ``application/json`` (415 ``unsupported_media_type``), which a
  foreign page cannot send without a preflight that CORS refuses. A ``POST``
  without a body (cancel, retry) or a ``DELETE`` needs no preflight at all:
  a browser's ``Origin`` that is neither a configured CORS origin nor the
  server's own gets 403 ``forbidden_origin``. Requests without ``Origin``
  (curl, the CLI, the client) are not browsers' and pass.
  The WebSocket handshake is checked the same way (its ``{"action": "cancel"}``
  changes state too).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from quart import Quart, request, websocket
from quart.wrappers import Request, Websocket

from ..protocol import ErrorCode
from ._errors import ApiError

#: Names that always mean this machine (RFC 6761: ``localhost`` and its subdomains).
_LOOPBACK_NAMES = frozenset({"localhost"})

#: The routes whose ``POST`` needs a body; on the others a ``POST`` may come without one.
_BODY_REQUIRED = frozenset({"/api/jobs"})

#: A request target (path and query) or all header lines together above this are refused
#: (414, 431). Hypercorn's own limit is 16 KiB for a head that arrives in pieces but up
#: to 64 KiB for one that arrives at once; this makes it 16 KiB either way.
MAX_TARGET_BYTES = 16 * 1024
MAX_HEADER_BYTES = 16 * 1024

_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, without port; IPv6 without brackets) is loopback."""
    name = host.rstrip(".").lower()
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a ``Host`` header value, without port or IPv6 brackets."""
    header = header.strip()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class RequestGuards:
    """The Host, Origin and Content-Type checks of one server's settings."""

    def __init__(self, bind_host: str, allowed_hosts: Iterable[str], cors_origins: Iterable[str]):
        self.check_host = is_loopback(host_name(bind_host))
        self.allowed_hosts = frozenset(host.rstrip(".").lower() for host in allowed_hosts)
        self.cors_origins = frozenset(origin.rstrip("/") for origin in cors_origins)

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` may be served."""
        if not self.check_host:
            return True
        if not header:
            return False
        name = host_name(header).rstrip(".").lower()
        return is_loopback(name) or name in self.allowed_hosts

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """Whether a state-changing request from ``origin`` (to ``host``) may go on."""
        if origin is None:
            return True  # not a browser's cross-site request
        origin = origin.rstrip("/")
        if origin in self.cors_origins:
            return True
        # The server's own page: same scheme (plain HTTP), same host and port.
        return host is not None and origin.lower() == f"http://{host}".lower()

    def check(self, connection: Request | Websocket, method: str) -> None:
        """Raise the :class:`ApiError` ``connection`` deserves, if any."""
        check_head_size(connection)
        if not self.host_allowed(connection.headers.get("Host")):
            raise ApiError(
                400,
                ErrorCode.INVALID_HOST,
                "this server answers loopback host names only (see --allowed-host)",
            )
        if method in _STATE_CHANGING or isinstance(connection, Websocket):
            origin = connection.headers.get("Origin")
            if not self.origin_allowed(origin, connection.headers.get("Host")):
                raise ApiError(
                    403,
                    ErrorCode.FORBIDDEN_ORIGIN,
                    f"requests from origin {(origin or '')[:100]!r} are not allowed "
                    "(see --cors-origin)",
                )
        if method == "POST" and isinstance(connection, Request):
            check_json_body(connection)


def check_head_size(connection: Request | Websocket) -> None:
    """414 for a request target over 16 KiB, 431 for header lines over 16 KiB in all."""
    scope = connection.scope
    if len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) > MAX_TARGET_BYTES:
        raise ApiError(414, ErrorCode.URI_TOO_LONG, "the request target is longer than 16 KiB")
    if sum(len(name) + len(value) + 4 for name, value in scope["headers"]) > MAX_HEADER_BYTES:
        raise ApiError(431, ErrorCode.HEADERS_TOO_LARGE, "the request headers exceed 16 KiB")


def check_json_body(req: Request) -> None:
    """415 unless the ``POST`` body is JSON, or there is none where none is needed."""
    content_type = req.headers.get("Content-Type")
    if content_type is not None:
        mime = content_type.partition(";")[0].strip().lower()
        if mime == "application/json":
            return
        what = f"not {mime!r}" if mime else "not an empty type"
    else:
        has_body = req.headers.get("Transfer-Encoding") is not None or (
            req.headers.get("Content-Length", "0").strip() not in ("", "0")
        )
        if not has_body and req.path not in _BODY_REQUIRED:
            return
        what = "sent with Content-Type: application/json"
    raise ApiError(
        415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"a request body must be application/json, {what}"
    )


def install_guards(app: Quart, guards: RequestGuards) -> None:
    """Check every request and WebSocket handshake of ``app`` with ``guards``."""

    @app.before_request
    async def _guard_request() -> None:
        # Host first, for every request; the rest for routes that exist (else 404 or 405).
        if request.method == "OPTIONS" or request.url_rule is None or request.routing_exception:
            check_head_size(request)
            if not guards.host_allowed(request.headers.get("Host")):
                guards.check(request, "OPTIONS")
            return
        guards.check(request, request.method)

    @app.before_websocket
    async def _guard_websocket() -> None:
        guards.check(websocket, "GET")
