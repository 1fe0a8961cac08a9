"""Hypercorn, run our way: the one module that knows Hypercorn's insides.

Hypercorn's trio worker (``hypercorn.trio.run.worker_serve``) makes each
connection's handler from a class it names itself, so the one way to change
how a connection behaves without replacing attributes of Hypercorn's modules
is to run the worker ourselves. :func:`serve_app` is that worker, for one
process and plain TCP, put together from Hypercorn's own parts (its lifespan,
its worker context, its ``TCPServer``), with these workarounds:

1. **A write that never ends.** Hypercorn writes to a socket inside a
   cancel-shielded scope, so a client that stopped reading keeps its
   connection's task blocked in that write through the graceful timeout's
   cancellation, and the server never exits. Closing the socket is the one
   thing that wakes such a write: :class:`Connections` knows every open
   connection, and shutdown aborts those still open ``CUT_MARGIN`` seconds
   after the graceful timeout.
2. **The cost of the send path.** Every SSE frame and WebSocket message of
   every subscriber goes through ``TCPServer.protocol_send``; Hypercorn's
   (a lock, a shielding cancel scope, trio's ``SocketStream.send_all`` and its
   conflict detector and error translation) costs a third of the server's CPU
   per event. :class:`_Connection` writes what the socket takes at once with
   one plain ``os.write`` (nothing can cancel it half-way, so it needs no
   shield) and only the rest, if any, the shielded way.
3. **A closed connection held open by its ping loop.** When the peer has
   gone, Hypercorn's WebSocket ping task still sleeps out its interval (20 s)
   before it looks, and holds the connection (its socket, its task) open
   meanwhile. :class:`_Connection` cancels what is left of a connection once
   its reader has seen the end.
4. **WebSocket frames built once per event.** A server's frames are not
   masked, so one event's text frame is the same bytes for every subscriber:
   :func:`text_frame` builds them (once per event, through ``Event.encoded``)
   and :func:`frame_writer` writes them to the connection directly, past
   Quart's ``websocket.send``, Hypercorn's ``WSStream.app_send`` and
   wsproto's framing, which would otherwise frame the same text again for
   every subscriber. Limits: whole (``FIN``) text frames only, never
   compressed (``permessage-deflate`` lets any message go uncompressed, RSV1
   clear), written only while wsproto's connection is open and no fragmented
   message of its own is half-sent; anything else (other servers, HTTP/2
   WebSockets) gets no writer and the caller sends through Quart as before.
   A write may carry several whole frames (a batch: one syscall).
5. **SSE chunks written straight to the connection.** Between a body
   chunk's ``send`` and the socket, Hypercorn's ``HTTPStream`` and
   ``H11Protocol`` and h11 build three event objects and run h11's state
   machine for ``<hex size>\r\n<data>\r\n``, and the write lock is a trip
   through the scheduler: more than the socket write. :func:`body_writer`
   (asked once the headers are out) frames the chunk itself and writes it
   with :meth:`_Connection.write_raw`. h11 is not told, and need not be: a
   chunked body's data leaves its state as it was, so the end of the
   response (sent the usual way), keep-alive and close behave as before.
   Limits: HTTP/1.1 chunked bodies on this module's connections only (it
   reads h11's private ``_writer`` to know; renamed, there is no writer);
   HTTP/2, HTTP/1.0, a ``Content-Length``, a ``HEAD``, another server or a
   response not started get no writer, and the caller sends through ASGI.
   Once the client is gone (Hypercorn closed the stream) a chunk is dropped.

Each relies on Hypercorn's insides as they are in :data:`TESTED_VERSIONS`;
:func:`check_version` refuses any other version at startup, loudly. The tests
of these workarounds are in ``tests/test_web_hypercorn.py`` (of 5:
``tests/test_web_hypercorn_sse.py``).
"""

from ._connection import Connections, _Connection, _send_all, _write_now
from ._serve import CUT_MARGIN, serve_app
from ._version import TESTED_VERSIONS, UntestedHypercorn, check_version, installed_version
from ._writers import BodyWriter, FrameWriter, body_writer, frame_writer, text_frame

__all__ = [
    "CUT_MARGIN",
    "TESTED_VERSIONS",
    "BodyWriter",
    "Connections",
    "FrameWriter",
    "UntestedHypercorn",
    "_Connection",
    "_send_all",
    "_write_now",
    "body_writer",
    "check_version",
    "frame_writer",
    "installed_version",
    "serve_app",
    "text_frame",
]
