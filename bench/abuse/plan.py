"""The sizes of the ``abuse`` scenario in one mode."""

from __future__ import annotations

from dataclasses import dataclass

#: The conditions, in the order they run: a quiet baseline, each abuse, a quiet control.
CONDITIONS = (
    "quiet",
    "slow-readers",
    "slowloris",
    "ws-big-frames",
    "replay-storm",
    "head-storm",
    "quiet-after",
)

#: The conditions without abuse (no attacker process).
QUIET = frozenset({"quiet", "quiet-after"})

#: The goal of issue 11: health p99 under every abuse at most this many times the quiet one.
GOAL_RATIO = 3.0


@dataclass(frozen=True, slots=True)
class AbusePlan:
    """How long each condition is probed and how big each abuse is."""

    #: Seconds of probing per condition, after ``warmup`` seconds of abuse.
    window: float
    warmup: float
    #: Pause between two health requests of the probe (one at a time, a fresh connection each).
    health_interval: float
    #: Fresh SSE clients timed to their first event per condition.
    first_event_samples: int
    #: Finished jobs stored before the run (what a replay storm replays).
    stored_jobs: int
    #: SSE clients of ``/api/events`` on small-receive-buffer sockets that never read.
    slow_readers: int
    #: Sockets trickling header bytes, one byte per ``slowloris_interval`` seconds.
    slowloris: int
    #: WebSocket clients, each sending one ``ws_frame_bytes`` frame per connection, in a loop.
    ws_clients: int
    ws_frame_bytes: int
    #: Clients replaying ``/api/events`` from ``Last-Event-ID: 0-0``, in a loop.
    replay_clients: int
    #: Connections at once sending ``HEAD`` + a pipelined ``GET``, then closing, in a loop.
    head_workers: int
    slowloris_interval: float = 1.0
    slow_reader_rcvbuf: int = 4096
    #: Jobs ticking through the whole run, and their tick.
    producers: int = 2
    tick_seconds: float = 0.05
    #: Seconds the server gets to return to its quiet descriptor count after an abuse.
    settle_timeout: float = 20.0
    pin: bool = True


def abuse_plan(mode: str) -> AbusePlan:
    """The plan of ``mode`` (``smoke``: seconds; ``quick``: about 30 s; full: under 2 min)."""
    if mode == "smoke":
        return AbusePlan(0.5, 0.2, 0.02, 2, 40, 10, 20, 2, 100_000, 2, 2)
    if mode == "quick":
        return AbusePlan(2.0, 0.5, 0.01, 5, 500, 100, 500, 4, 1 << 20, 4, 8)
    return AbusePlan(8.0, 1.0, 0.01, 10, 3_000, 200, 2_000, 8, 16 << 20, 6, 16)
