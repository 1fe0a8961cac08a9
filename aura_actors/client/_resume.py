"""Resume, backoff and dedup: the one reconnection logic of the SSE and WebSocket streams.

A stream keeps a :class:`Resume`: it says which events are new (ids must
increase; a replayed one is dropped), where to resume (the last id
delivered), and how long to wait before the next try (:class:`ReconnectPolicy`),
giving up with :class:`~aura_actors.client.ConnectionLost`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import trio

from ..protocol import EventId
from ._errors import ConnectionLost, ProtocolError
from ._events import Event

__all__ = ["OnReconnect", "ReconnectPolicy", "Reconnecting", "Resume", "StreamDropped"]

logger = logging.getLogger("aura_actors.client")


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


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """Passed to an ``on_reconnect`` callback just before the client waits to reconnect.

    :ivar attempt: the try about to be made (1 to ``max_attempts``).
    :ivar max_attempts: the policy's limit.
    :ivar delay: seconds the client now waits before trying.
    :ivar reason: why the connection is being replaced (an exception or a description).
    :ivar last_event_id: where the stream will resume.
    """

    attempt: int
    max_attempts: int
    delay: float
    reason: str
    last_event_id: str | None


OnReconnect = Callable[[Reconnecting], None]


class StreamDropped(Exception):
    """A connection ended in a way that calls for a reconnect (and a resume)."""


def _parse_id(text: str) -> EventId:
    try:
        return EventId.parse(text)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None


class Resume:
    """Where a stream stands: the last event delivered, and the failed tries in a row.

    :ivar last_event_id: the id of the last event delivered (resume after it).
    :ivar failures: reconnection tries in a row without an event.
    :ivar duplicates_dropped: events dropped because their id was not new.
    :ivar server_retry: the stream's ``retry:`` in seconds, once it sent one.
    """

    def __init__(
        self,
        target: str,
        policy: ReconnectPolicy,
        *,
        last_event_id: str | None = None,
        on_reconnect: OnReconnect | None = None,
    ) -> None:
        self.target = target
        self.policy = policy
        self.on_reconnect = on_reconnect
        self.last_event_id: str | None = last_event_id or None
        self._last_key = None if self.last_event_id is None else _parse_id(self.last_event_id)
        self.failures = 0
        self.duplicates_dropped = 0
        self.server_retry: float | None = None

    def accept(self, event: Event) -> bool:
        """Whether ``event`` is new: deliver it (and resume after it) or drop it.

        An event without id (a stream error) is always delivered and moves
        nothing. One with an id is new when its id is greater than the last
        delivered; that also resets the count of failed tries.
        """
        if event.id is None:
            return True
        key = _parse_id(event.id)
        if self._last_key is not None and key <= self._last_key:
            self.duplicates_dropped += 1
            return False
        self._last_key = key
        self.last_event_id = event.id
        self.failures = 0
        return True

    async def backoff(self, reason: str) -> None:
        """Count a failed connection and wait before the next try (a checkpoint).

        Raises :class:`~aura_actors.client.ConnectionLost` once the policy's
        tries are spent. Cancelling it stops the wait (and the reconnecting).
        """
        self.failures += 1
        tries = self.policy.max_attempts
        if self.failures > tries:
            raise ConnectionLost(
                f"{self.target}: connection lost ({reason}); gave up after {tries} "
                f"reconnection {'try' if tries == 1 else 'tries'}",
                attempts=tries,
                last_event_id=self.last_event_id,
            )
        delay = self.policy.delay(self.failures, self.server_retry)
        logger.info(
            "stream dropped; reconnecting",
            extra={"target": self.target, "attempt": self.failures, "delay": delay},
        )
        if self.on_reconnect is not None:
            self.on_reconnect(Reconnecting(self.failures, tries, delay, reason, self.last_event_id))
        await trio.sleep(delay)
