"""The app's ASGI connection classes: Quart-Trio's, with two fixes and the event-stream hand-off.

Quart lets an app replace the classes that speak ASGI for it
(``asgi_http_class``, ``asgi_websocket_class``); :class:`App` does, and these
classes add, between Hypercorn and Quart-Trio:

1. **Whole sends.** Every ``send`` that is not a streaming chunk runs to its
   end, whatever cancels the request. Quart-Trio cancels a request's task as
   soon as it receives ``http.disconnect``, and Hypercorn queues that message
   from inside the app's own last ``send`` when it closes a connection;
   cancelled half-way, the close never happened, the connection stayed open
   with its parser stuck, and the client's next request on it hung. A
   shielded ``send`` blocks no longer than Hypercorn's own write, which is
   shielded already (and which shutdown cuts, see ``_hypercorn``). A
   streaming chunk (an SSE frame, a WebSocket message) is one write that
   Hypercorn shields and never closes the connection: not shielded here.

2. **Answers after the body.** A response waits for the rest of its request
   body (up to ``LINGER_SECONDS`` and ``LINGER_BYTES``; Quart reads and drops
   it meanwhile). A 413 is decided from ``Content-Length`` or the first MiB,
   a 401, 404 or 405 never reads the body: answered at once, Hypercorn would
   close the connection while the client is still sending, the client's
   kernel would answer with a reset, and the reset destroys the response
   before the client reads it. Waiting, the client reads the answer, and the
   connection stays usable.

3. **The event stream.** A response whose body is an
   :class:`~._sse.EventStream` is not iterated chunk by chunk through Quart:
   once its headers are out, the stream writes its frames itself: straight to
   the connection where ``_hypercorn.body_writer`` allows it, to ``send`` else.
   A ``HEAD`` gets the headers and the end, and holds nothing open.
4. **Prebuilt WebSocket frames.** A WebSocket's scope carries, under
   ``scope["extensions"][FRAMES_EXTENSION]``, the writer of prebuilt frames
   that ``_hypercorn.frame_writer`` makes of Hypercorn's ``send`` (when it
   makes one): the route writes each event's frame, built once, with it.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart.typing import ResponseTypes
from quart.wrappers.request import Body
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection, TrioASGIWebsocketConnection

from ._hypercorn import frame_writer
from ._sse import EventStream

error_logger = logging.getLogger("aura_actors.server")

#: How long, and how many body bytes, a response waits for the rest of its request body.
LINGER_SECONDS = 5.0
LINGER_BYTES = 64 * 1024 * 1024

_STREAMING = frozenset({"websocket.send"})

#: The scope extension under which a WebSocket finds its writer of prebuilt frames (fix 4).
FRAMES_EXTENSION = "aura.prebuilt_frames"


def whole_sends(send: ASGISendCallable) -> ASGISendCallable:
    """``send``, shielded from cancellation except for streaming chunks (fix 1)."""

    async def send_whole(message: Any) -> None:
        if message["type"] in _STREAMING or message.get("more_body", False):
            await send(message)
            return
        with trio.CancelScope(shield=True):
            await send(message)

    return send_whole


class HttpConnection(TrioASGIHTTPConnection):
    """One HTTP request: Quart-Trio's handling, plus fixes 1 to 3.

    Every open SSE stream is one of these for as long as it lasts, so it is
    kept lean: the request is handled in the connection's own task (Quart-Trio
    starts a second one), the request and response objects are let go once
    the stream's headers are out, and the body's end is a flag (an event only
    when a response has to wait for it).
    """

    def __init__(self, app: Any, scope: Any) -> None:
        super().__init__(app, scope)
        self._body_bytes = 0
        self._body_ended = False
        self._body_waiter: trio.Event | None = None

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        request = self._create_request_from_scope(send)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.handle_messages, nursery, request.body, receive)
            # No response timeout (the app's RESPONSE_TIMEOUT is None): a stream lasts.
            respond = self._send_response(send, await self.app.handle_request(request))
            del request
            await respond
            nursery.cancel_scope.cancel()

    async def handle_messages(  # type: ignore[override]
        self, nursery: trio.Nursery, body: Body | None, receive: ASGIReceiveCallable
    ) -> None:
        """Quart's: the request's body as it comes, until a disconnect ends the request."""
        while True:
            message = await receive()
            if message["type"] == "http.request" and body is not None:
                chunk = message.get("body", b"")
                body.append(chunk)
                self._body_bytes += len(chunk)
                if not message.get("more_body", False):
                    body.set_complete()
                    body = None
                    self._end_body()
                elif self._body_bytes > LINGER_BYTES:
                    self._end_body()
            elif message["type"] == "http.disconnect":
                self._end_body()
                break
        nursery.cancel_scope.cancel()

    def _end_body(self) -> None:
        self._body_ended = True
        if self._body_waiter is not None:
            self._body_waiter.set()

    async def _send_response(self, send: ASGISendCallable, response: ResponseTypes) -> None:
        if not self._body_ended:
            self._body_waiter = trio.Event()
            with trio.move_on_after(LINGER_SECONDS):
                await self._body_waiter.wait()
        stream = getattr(response, "response", None)
        if not isinstance(stream, EventStream):
            await super()._send_response(whole_sends(send), response)
            return
        start = _start(response)
        del response
        with trio.CancelScope(shield=True):
            await send(start)
        del start
        if self.scope["method"] != "HEAD":
            try:
                await stream.write_to(send)  # type: ignore[arg-type]
            except Exception:
                # Hypercorn's error log is off (its lines would carry query tokens).
                error_logger.exception("sse stream failed", extra={"path": self.scope["path"]})
                raise
        # The end of the response closes (or recycles) the connection: never half-way.
        with trio.CancelScope(shield=True):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _start(response: ResponseTypes) -> Any:
    """``http.response.start``; header lines shared between streams (Hypercorn keeps them)."""
    headers = [_header(name, value) for name, value in response.headers.items()]
    return {"type": "http.response.start", "status": response.status_code, "headers": headers}


@functools.lru_cache(maxsize=256)
def _header(name: str, value: str) -> tuple[bytes, bytes]:
    return name.lower().encode(), value.encode()


class WebsocketConnection(TrioASGIWebsocketConnection):
    """One WebSocket: Quart-Trio's, with whole sends but for messages (fix 1), frames (fix 4)."""

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        writer = frame_writer(send)
        if writer is not None:
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[FRAMES_EXTENSION] = writer
        await super().__call__(receive, whole_sends(send))


class App(QuartTrio):
    """Quart-Trio speaking ASGI through :class:`HttpConnection` and :class:`WebsocketConnection`."""

    asgi_http_class = HttpConnection
    asgi_websocket_class = WebsocketConnection
