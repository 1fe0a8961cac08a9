"""When and how often a stream reconnects."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["ReconnectPolicy"]


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a stream reconnects after it drops.

    After a drop (a connection error, the stream ending before its terminal
    event, a 5xx answer, no byte for ``idle_timeout`` seconds) the client waits
    ``delay(n)`` before try ``n`` (1, 2, ..., ``max_attempts``), and raises
    :class:`~aura_actors.client.ConnectionLost` when try ``max_attempts`` failed
    too. With the defaults that is 1, 2, 4, 8, 16 s, then give up. The count
    starts again from 1 whenever a connection delivers an event. A connection
    that fails before the first event (including the very first connection) is
    handled the same way.

    Never retried: 204 (the job's stream is over), 401, 404 and other 4xx.

    :ivar max_attempts: reconnection tries in a row before giving up (0: never
        reconnect).
    :ivar base_delay: seconds before the first try, when the server gave no
        ``retry:`` (or ``use_server_retry`` is off).
    :ivar multiplier: each further try waits this many times longer.
    :ivar max_delay: cap on one wait (``None``: no cap).
    :ivar use_server_retry: take the stream's ``retry:`` (milliseconds) as the base.
    :ivar jitter: spread each wait uniformly by ``± jitter × delay`` (0: exact).
    :ivar idle_timeout: seconds without a byte (event or keep-alive) after which
        a connection counts as dropped; keep it above the server's keepalive
        interval. ``None`` waits forever.
    :ivar connect_timeout: seconds to establish a connection.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float | None = None
    use_server_retry: bool = True
    jitter: float = 0.0
    idle_timeout: float | None = 60.0
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 0:
            raise ValueError("max_attempts must not be negative")
        if self.base_delay < 0 or self.multiplier < 1:
            raise ValueError("base_delay must be >= 0 and multiplier >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, attempt: int, server_retry: float | None = None) -> float:
        """Seconds to wait before reconnection try ``attempt`` (counted from 1).

        ``server_retry`` is the stream's ``retry:`` in seconds, if it sent one.
        """
        base = self.base_delay
        if self.use_server_retry and server_retry is not None:
            base = server_retry
        seconds = base * self.multiplier ** (attempt - 1)
        if self.max_delay is not None:
            seconds = min(seconds, self.max_delay)
        if self.jitter:
            seconds *= 1 + random.uniform(-self.jitter, self.jitter)
        return seconds
