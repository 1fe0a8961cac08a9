"""The penalty box: an address whose connection was closed for abuse waits a cool-down.

The server's limits end an abusive connection (a WebSocket frame over the cap
closes with 1009, a request head not finished within ``--header-timeout`` is
cut), but the client may reconnect at once, and each new connection costs the
server an accept, an HTTP parse, maybe an upgrade and a history replay before
the limit bites again: a few clients reconnecting in a loop slow everyone.
The same goes for a flood of requests whose answers the client never waits
for (it hangs up before they begin: a ``HEAD`` storm); a few such requests
are normal (a page navigated away), so :data:`ABANDON_BURST` are allowed,
then :data:`ABANDON_RATE` a second. Such a client's connections, and a
remembered offender's, are served :data:`SUSPECT_CONNECTIONS` at a time: a
flood is judged as its connections end, and those accepted meanwhile must
not crowd out everyone.

:class:`PenaltyBox` remembers the address of such a client; while its
cool-down lasts, every new connection from that address is closed right
after it is accepted (a reset, before a byte is read), which costs the server
almost nothing. The cool-down (``--abuse-cooldown``) doubles with each offence
after the previous cool-down ended, up to :data:`MAX_FACTOR` times, and an
offence is forgotten that long after its cool-down. Offences during a
cool-down (the address's other connections, already open, cut in turn) do
not escalate it. The table holds ``--abuse-addresses`` addresses at most
(and as many allowances), the least recently punished going first, so
address churn cannot grow it.

Everyone behind one address shares its penalty: behind a reverse proxy every
client has the proxy's address, so turn it off there (``--abuse-cooldown 0``)
and let the proxy limit its clients.

Which ended connections were abusive is read from Hypercorn's objects as they
are in the versions ``_hypercorn.TESTED_VERSIONS`` names (tested in
``tests/abuse/test_abuse_penalty.py``).
"""

from __future__ import annotations

import contextlib
import logging
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from socket import SO_LINGER, SOL_SOCKET

import h11
import trio
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope

logger = logging.getLogger("aura_actors.server")

#: Addresses remembered at most (an entry is a few hundred bytes).
CAPACITY = 4096
#: A repeat offender's cool-down grows to this many times the first one at most.
MAX_FACTOR = 32

#: Requests an address may abandon in a burst (hang up before their answer began), and
#: per second after that; past it, a flood: the address goes in the box.
ABANDON_BURST = 50
ABANDON_RATE = 10.0

#: Connections at once an address that abandoned requests lately may have; more are reset.
SUSPECT_CONNECTIONS = 32

#: Why a connection was closed for abuse.
OVERSIZED_FRAME = "oversized_frame"
HEADER_TIMEOUT = "header_timeout"
ABANDONED_FLOOD = "abandoned_requests"


@dataclass(slots=True)
class _Record:
    strikes: int
    until: float
    forget_at: float


class PenaltyBox:
    """Addresses in their cool-down, and their past offences; ``cooldown`` 0 turns it off."""

    def __init__(
        self,
        cooldown: float,
        *,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cooldown = cooldown
        self.capacity = capacity
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        #: Per address: abandoned requests it may still make, and when that was counted.
        self._allowance: OrderedDict[str, tuple[float, float]] = OrderedDict()
        #: Connections closed at accept so far, and offences counted (for tests and the log).
        self.refused = 0
        self.offences = 0

    def __len__(self) -> int:
        return len(self._records)

    def refuses(self, address: str) -> bool:
        """Whether ``address`` is in its cool-down now (counted as a refusal if so)."""
        record = self._records.get(address)
        if record is None or self._clock() >= record.until:
            return False
        self.refused += 1
        return True

    def judge(self, address: str, server: TCPServer) -> None:
        """Punish ``address`` if its ended connection ``server`` was cut by the header
        timeout, or was one abandoned request too many."""
        if self.cooldown <= 0:
            return
        if header_timed_out(server):
            self.punish(address, HEADER_TIMEOUT)
        elif abandoned(server):
            self.abandoned(address)

    def abandoned(self, address: str) -> None:
        """Count a request ``address`` hung up on before its answer began; past
        :data:`ABANDON_BURST` (refilled at :data:`ABANDON_RATE` a second), punish it."""
        if self.cooldown <= 0:
            return
        now = self._clock()
        left, since = self._allowance.pop(address, (ABANDON_BURST, now))
        left = min(ABANDON_BURST, left + (now - since) * ABANDON_RATE) - 1
        if left < 0:
            self.punish(address, ABANDONED_FLOOD)
            # No allowance back during the cool-down: a flood resumed after it is cut short.
            record = self._records.get(address)
            left, now = 0.0, now if record is None else record.until
        self._allowance[address] = (left, now)
        while len(self._allowance) > self.capacity:
            self._allowance.popitem(last=False)

    def crowded(self, address: str, connections: int) -> bool:
        """Whether ``address``, with ``connections`` open, may open no more: it has
        :data:`SUSPECT_CONNECTIONS` and abandoned requests lately (its allowance is not
        whole again) or is a remembered offender (counted as a refusal if so)."""
        if connections < SUSPECT_CONNECTIONS:
            return False
        now = self._clock()
        record = self._records.get(address)
        left, since = self._allowance.get(address, (ABANDON_BURST, now))
        if left + (now - since) * ABANDON_RATE >= ABANDON_BURST and (
            record is None or now >= record.forget_at
        ):
            return False
        self.refused += 1
        return True

    def punish(self, address: str, reason: str) -> None:
        """Start (or escalate) ``address``'s cool-down for a connection closed for ``reason``."""
        if self.cooldown <= 0:
            return
        now = self._clock()
        record = self._records.get(address)
        if record is not None and now < record.until:
            return  # one burst of offences is one offence
        strikes = 1 if record is None or now >= record.forget_at else record.strikes + 1
        factor = min(MAX_FACTOR, 1 << min(strikes - 1, 30))
        until = now + self.cooldown * factor
        self._records[address] = _Record(strikes, until, until + self.cooldown * MAX_FACTOR)
        self._records.move_to_end(address)
        while len(self._records) > self.capacity:
            self._records.popitem(last=False)
        self.offences += 1
        if self.offences == 1 or self.offences % 1000 == 0 or strikes > 1:
            logger.warning(
                "address in the penalty box",
                extra={"reason": reason, "seconds": self.cooldown * factor, "strikes": strikes},
            )


def turn_away(stream: trio.SocketStream) -> None:
    """Close a just-accepted connection with a reset: nothing read, nothing left behind."""
    with contextlib.suppress(OSError):
        stream.socket.setsockopt(SOL_SOCKET, SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


def header_timed_out(server: TCPServer) -> bool:
    """Whether an ended connection was cut with part of a request head read (slowloris).

    The one way a connection ends with bytes of an unfinished head buffered,
    the client not having closed its side and the server not shutting down,
    is the header timeout (or a reset mid-head). An idle keep-alive
    connection, or one that never sent a byte (a browser's preconnect), is no
    offence.
    """
    wrapper = getattr(server, "protocol", None)
    protocol = getattr(wrapper, "protocol", None)
    if type(protocol) is not H11Protocol or server.context.terminated.is_set():
        return False
    connection = protocol.connection
    if type(connection) is not h11.Connection or connection.their_state is not h11.IDLE:
        return False
    pending, closed = connection.trailing_data
    return bool(pending) and not closed


def abandoned(server: TCPServer) -> bool:
    """Whether the client of an ended connection hung up on a request before its answer
    began (or, for a ``HEAD``, before its answer ended).

    A flood of requests whose answers are never read (``HEAD`` storms) leaves
    this; a client closing a stream it was reading (its head sent) does not.
    """
    wrapper = getattr(server, "protocol", None)
    protocol = getattr(wrapper, "protocol", None)
    if type(protocol) is not H11Protocol:
        return False
    connection = protocol.connection
    if type(connection) is not h11.Connection:
        return False
    if not (connection.their_state is h11.CLOSED or connection.trailing_data[1]):
        return False
    # h11 keeps the method it frames the answer by; a HEAD's answer is its head alone.
    head = getattr(connection, "_request_method", None) == b"HEAD"
    return connection.our_state is h11.SEND_RESPONSE or (
        head and connection.our_state is h11.SEND_BODY
    )


def frame_too_big(send: object) -> bool:
    """Whether the WebSocket behind the ASGI ``send`` closed with 1009 (a frame over the cap).

    Hypercorn leaves the count over its limit in the stream's buffer when it
    closes for that reason.
    """
    stream = getattr(send, "__self__", None)
    if type(stream) is not WSStream:
        return False
    buffer = stream.buffer
    return bool(buffer.length > buffer.max_length)


def punishing_oversized_frames(app: ASGIFramework, box: PenaltyBox) -> ASGIFramework:
    """``app``, with the client of a WebSocket closed for an oversized frame punished."""
    if box.cooldown <= 0:
        return app

    async def wrapped(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        try:
            await app(scope, receive, send)
        finally:
            client = scope.get("client")
            if client and frame_too_big(send):
                box.punish(client[0], OVERSIZED_FRAME)

    return wrapped
