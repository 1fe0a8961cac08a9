"""The SSE routes' hot path as plain ASGI, in front of Quart.

Every SSE stream is long-lived and sends one small write per event, so the
per-write cost is what limits a server with many subscribers. Served through
Quart, each write went through its response machinery (the body's async
generator, ``_send_response``) and the app's send guard; here a stream is one
loop that sends its frames straight to Hypercorn.

Only the successful case is served here: a ``GET`` of ``/api/jobs/<id>/events``
or ``/api/events`` that will answer 200 with a stream. Everything else (a
401, 400, 404, 503 or 204, another method, a request with a body) goes to the
Quart app unchanged, which answers it as it always has: the Quart routes stay
the reference (and what the OpenAPI document describes). The answer here is
byte for byte the one Quart gives (the same headers, CORS included, and the
same request log line).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

import trio

from ..runtime import RuntimeRefusal, Subscription
from ._context import ServerContext, parse_last_event_id
from ._cors import EXPOSED_HEADERS
from ._errors import ApiError
from ._sse_routes import (
    KEEPALIVE_FRAME,
    SSE_HEADERS,
    encode_batch,
    plan_all_stream,
    plan_job_stream,
    sse_retry_frame,
)

request_logger = logging.getLogger("aura_actors.requests")
error_logger = logging.getLogger("aura_actors.server")

ASGIApp = Callable[[Any, Any, Any], Any]

_JOB_EVENTS = re.compile(r"/api/jobs/([^/]+)/events")
_ALL_EVENTS = "/api/events"

_BASE_HEADERS = [
    (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in SSE_HEADERS.items()
]


class _Fallback(Exception):
    """This request is not a plain 200 stream: let Quart answer it."""


class SseFastPath:
    """ASGI middleware serving successful SSE streams itself, everything else via ``app``."""

    def __init__(self, app: ASGIApp, context: ServerContext, cors_origins: Iterable[str]) -> None:
        self.app = app
        self.context = context
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in cors_origins)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("root_path")
            or not scope["path"].startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            subscribe = await self._plan(scope)
        except _Fallback:
            await self.app(scope, receive, send)
            return
        try:
            await self._stream(scope, receive, send, subscribe, started)
        except Exception:
            # Hypercorn's error log is off (its lines would carry query tokens): say it here.
            error_logger.exception("sse stream failed", extra={"path": scope["path"]})
            raise

    # -- deciding ----------------------------------------------------------------

    async def _plan(self, scope: Any) -> Callable[[], Awaitable[Subscription]]:
        """How to subscribe for this request, or :class:`_Fallback`."""
        path: str = scope["path"]
        job_match = _JOB_EVENTS.fullmatch(path)
        if job_match is None and path != _ALL_EVENTS:
            raise _Fallback
        headers = _first_values(scope["headers"])
        if b"content-length" in headers and headers[b"content-length"].strip() not in {b"", b"0"}:
            raise _Fallback  # a body to read (and to linger for): Quart's business
        if b"transfer-encoding" in headers:
            raise _Fallback
        query = _first_query_values(scope["query_string"])
        context = self.context
        runtime = context.runtime
        try:
            user = context.authenticator.user_for(
                _text(headers.get(b"authorization")), query.get("access_token")
            )
            after = parse_last_event_id(
                _text(headers.get(b"last-event-id")), query.get("lastEventId")
            )
            if job_match is None:
                return plan_all_stream(runtime, user=user, after=after)
            subscribe = await plan_job_stream(runtime, job_match.group(1), user=user, after=after)
        except (ApiError, RuntimeRefusal):
            raise _Fallback from None
        if subscribe is None:
            raise _Fallback  # a 204: Quart's
        return subscribe

    # -- streaming ---------------------------------------------------------------

    def _response_headers(self, scope: Any) -> list[tuple[bytes, bytes]]:
        headers = list(_BASE_HEADERS)
        origin = _text(_first_values(scope["headers"]).get(b"origin"))
        if origin in self.allowed_origins:
            assert origin is not None
            headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
            headers.append((b"access-control-expose-headers", EXPOSED_HEADERS.encode("latin-1")))
        headers.append((b"vary", b"Origin"))
        return headers

    async def _stream(
        self,
        scope: Any,
        receive: Any,
        send: Any,
        subscribe: Callable[[], Awaitable[Subscription]],
        started: float,
    ) -> None:
        settings = self.context.settings
        headers = self._response_headers(scope)
        request_logger.info(
            "request",
            extra={
                "method": "GET",
                "path": scope["path"],
                "status": 200,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        async with trio.open_nursery() as nursery:
            # Quart-Trio's way: the client going away (``http.disconnect``) ends the response.
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            with await subscribe() as subscription:
                await send(_chunk(sse_retry_frame(settings.sse_retry_ms)))
                await _send_events(subscription, send, settings.keepalive)
            # The end of the response closes (or recycles) the connection: never half-way.
            with trio.CancelScope(shield=True):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            nursery.cancel_scope.cancel()


async def _send_events(subscription: Subscription, send: Any, keepalive: float) -> None:
    """Send ``subscription``'s events until it ends, a keep-alive whenever quiet that long.

    The keep-alive timer is one cancel scope per quiet spell, not one per wait:
    its deadline is pushed forward before each wait and lifted (``inf``) before
    each write, so it can only ever interrupt a wait (which loses nothing)
    and never a write (which would lose the frame h11 has already framed).
    """
    while True:
        held: bytes | None = None
        with trio.CancelScope() as quiet:
            while True:
                quiet.deadline = trio.current_time() + keepalive
                batch = await subscription.receive_batch()
                quiet.deadline = math.inf
                if not batch:
                    return
                frame = encode_batch(batch)
                if quiet.cancel_called:
                    # The timer fired after the batch was taken: its Cancelled is
                    # pending, so write outside the scope.
                    held = frame
                    break
                await send(_chunk(frame))
        if held is not None:
            await send(_chunk(held))
        elif quiet.cancelled_caught:
            await send(_chunk(KEEPALIVE_FRAME))


def _chunk(body: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": True}


async def _cancel_on_disconnect(receive: Any, scope: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


def _first_values(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Header name → its first value (names are lower case in ASGI)."""
    values: dict[bytes, bytes] = {}
    for name, value in raw:
        values.setdefault(name, value)
    return values


def _first_query_values(raw: bytes) -> dict[str, str]:
    """Query parameter → its first value, decoded as werkzeug (and so Quart) does."""
    values: dict[str, str] = {}
    if raw:
        for name, value in parse_qsl(
            raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace"
        ):
            values.setdefault(name, value)
    return values


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
