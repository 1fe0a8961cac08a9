"""What a well-behaved client sees during a condition: health latency, a stream's first event.

Both probes open a fresh connection each time, as a monitor or a new browser
tab would, so a server that is slow to accept shows as slow. A request that
fails or times out is counted as an error, and its time (up to the timeout)
is still a sample: a stalled server must not look fast by losing its slow
answers.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import trio

from bench.http.wire import HttpError, open_sse, request
from bench.stats import summarize

HOST = "127.0.0.1"
#: The longest a probe waits for one answer before counting it as an error.
PROBE_TIMEOUT = 10.0


@dataclass(slots=True)
class ProbeResult:
    """The samples of one condition, in milliseconds, and the outcomes that were not 200."""

    health_ms: list[float] = field(default_factory=list)
    first_event_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        """Summaries (p50, p99, ...) of both probes and the error counts."""
        return {
            "health_ms": summarize(self.health_ms),
            "first_event_ms": summarize(self.first_event_ms),
            "errors": dict(self.errors),
        }


async def _timed(probe: str, result: ProbeResult, samples: list[float], attempt: Any) -> None:
    began = time.perf_counter()
    outcome = "timeout"
    with trio.move_on_after(PROBE_TIMEOUT):
        try:
            outcome = await attempt()
        except (OSError, HttpError, trio.BrokenResourceError, ValueError) as error:
            outcome = type(error).__name__
    samples.append((time.perf_counter() - began) * 1000.0)
    if outcome != "ok":
        result.errors[f"{probe} {outcome}"] += 1


async def _health(port: int) -> str:
    answer = await request(HOST, port, "GET", "/api/health")
    return "ok" if answer.status == 200 else str(answer.status)


async def _first_event(port: int, path: str) -> str:
    stream = await open_sse(HOST, port, path)
    async with stream.stream:
        if stream.status != 200:
            return str(stream.status)
        while not stream.closed:
            if await stream.receive():
                return "ok"
    return "closed"


async def probe(
    port: int, window: float, interval: float, first_event_samples: int, stream_path: str
) -> ProbeResult:
    """Probe for ``window`` seconds: health one request at a time (``interval`` apart) and,
    beside it, ``first_event_samples`` fresh SSE clients of ``stream_path`` spread evenly."""
    result = ProbeResult()
    deadline = trio.current_time() + window

    async def health_loop() -> None:
        while trio.current_time() < deadline:
            await _timed("health", result, result.health_ms, lambda: _health(port))
            await trio.sleep(interval)

    async def first_event_loop() -> None:
        spacing = window / max(1, first_event_samples)
        for _ in range(first_event_samples):
            started = trio.current_time()
            await _timed(
                "first event",
                result,
                result.first_event_ms,
                lambda: _first_event(port, stream_path),
            )
            await trio.sleep_until(started + spacing)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(health_loop)
        nursery.start_soon(first_event_loop)
    return result
