"""The connection budget: at most so many open connections, the rest refused at once.

Each open connection holds a file descriptor, a task and its buffers. Without
a cap, enough idle or slow sockets (slowloris) exhaust the process's
descriptors, and then the store, artifact files and every new client fail
alike. :class:`ConnectionBudget` serves up to ``limit`` connections; one more
is answered ``503`` with ``{"error": {"code": "too_many_connections"}}``,
``Connection: close`` and ``Retry-After``, then closed, so it holds its
descriptor for a moment only. The cap counts every kind of connection: plain
requests, SSE streams and WebSockets.

Slow senders are the other half: the header timeout (``--header-timeout``,
Hypercorn's idle timeout) closes a connection that has not sent a whole
request head in time, so a trickle of header bytes holds a slot only that
long.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
from collections import Counter
from collections.abc import Callable

import trio
from hypercorn.trio.tcp_server import TCPServer

from ..protocol import ErrorCode
from ._hypercorn import Connections
from ._penalty import PenaltyBox, turn_away

logger = logging.getLogger("aura_actors.server")

#: Descriptors kept for everything but connections when the cap is derived from the limit.
_SHARE_FOR_CONNECTIONS = 0.75
#: The derived cap never exceeds this (a bigger one needs a deliberate ``--max-connections``).
_DERIVED_CEILING = 16_384
#: How long a refused connection may take to read its answer before it is closed.
_REFUSE_SECONDS = 1.0

_REFUSAL_BODY = json.dumps(
    {
        "error": {
            "code": ErrorCode.TOO_MANY_CONNECTIONS.value,
            "message": "the server has too many open connections; retry shortly",
        }
    }
).encode()
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n"
    b"Retry-After: 1\r\n"
    b"\r\n" + _REFUSAL_BODY
)


def raise_open_file_limit() -> None:
    """Raise the process's soft open-file limit to its hard one (many systems start at 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return
    target = _DERIVED_CEILING * 4 if hard == resource.RLIM_INFINITY else hard
    if target > soft:
        # If refused, keep what we have: the cap follows it.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def default_max_connections() -> int:
    """Three quarters of the process's open-file limit (soft), between 16 and 16384."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _DERIVED_CEILING
    return max(16, min(_DERIVED_CEILING, int(soft * _SHARE_FOR_CONNECTIONS)))


class ConnectionBudget(Connections):
    """:class:`Connections` that serves at most ``limit`` at once and refuses the rest.

    With a ``penalty`` box, a connection from an address in its cool-down is
    reset as soon as it is accepted, and each ended connection is judged
    there (see ``_penalty``).
    """

    def __init__(self, limit: int, penalty: PenaltyBox | None = None) -> None:
        super().__init__()
        self.limit = limit
        self.penalty = PenaltyBox(0) if penalty is None else penalty
        #: Connections refused so far (for tests and the log).
        self.refused = 0
        # The budget is spent as connections are accepted, in the order they came
        # (their tasks start in any order): those within it, those past it.
        self._within: set[trio.SocketStream] = set()
        self._past: set[trio.SocketStream] = set()
        #: Admitted connections not ended yet, by client address, and each one's address.
        self._in_flight: Counter[str] = Counter()
        self._hosts: dict[trio.SocketStream, str] = {}

    def admits(self, stream: trio.SocketStream, address: object) -> bool:
        """Take a connection just accepted from ``address`` into the budget, or reset it.

        Reset at once (``False``) if ``address`` is in its cool-down, or is a
        suspect with many connections already. Otherwise it is served if the
        connections accepted before it leave room, else answered 503.
        """
        host = str(address[0]) if isinstance(address, tuple) else None
        judged = host is not None and self.penalty.cooldown > 0
        if judged and host is not None:
            if self.penalty.refuses(host) or self.penalty.crowded(host, self._in_flight[host]):
                turn_away(stream)
                return False
            self._in_flight[host] += 1
            self._hosts[stream] = host
        if len(self._within) < self.limit:
            self._within.add(stream)
        else:
            self._past.add(stream)
        return True

    async def serve(
        self, connection: Callable[[trio.SocketStream], TCPServer], stream: trio.SocketStream
    ) -> None:
        """Run the connection made for ``stream`` if the budget allows, else answer 503."""
        host = self._hosts.pop(stream, None)
        if stream not in self._within and stream not in self._past:  # not admitted first
            (self._within if len(self._within) < self.limit else self._past).add(stream)
        try:
            if stream in self._within:
                server = connection(stream)
                await super().serve(lambda _stream: server, stream)
                if host is not None:
                    self.penalty.judge(host, server)
                return
        finally:
            self._within.discard(stream)
            self._past.discard(stream)
            if host is not None:
                self._in_flight[host] -= 1
                if not self._in_flight[host]:
                    del self._in_flight[host]
        self.refused += 1
        if self.refused == 1 or self.refused % 1000 == 0:
            logger.warning(
                "connection refused: too many open",
                extra={"limit": self.limit, "refused": self.refused},
            )
        await _refuse(stream)


async def _refuse(stream: trio.SocketStream) -> None:
    """Send the 503, let the client read it (its request drained a moment), close."""
    with trio.move_on_after(_REFUSE_SECONDS):
        try:
            await stream.send_all(_REFUSAL)
            await stream.send_eof()
            # Closing with unread request bytes would reset the connection and could
            # destroy the answer before the client reads it: drain until it hangs up.
            while await stream.receive_some(16384):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    await stream.aclose()
