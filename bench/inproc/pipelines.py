"""Bench-only pipelines: one stage that signals it is inside, then waits in one of four ways.

``wait`` sleeps forever, ``sleep`` awaits ``trio.sleep`` in a loop, ``subprocess``
runs ``sleep 60`` through ``ctx.run_process`` and ``thread`` runs a function in
a worker thread that loops on ``trio.from_thread.check_cancelled()`` and a short
``time.sleep``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from aura_actors.runtime import PipelineRegistry, Stage, StageContext

#: The stage kinds the cancel scenario measures.
STAGE_KINDS = ("sleep", "subprocess", "thread")


class Entered:
    """Counts stages that have entered their wait; wakes whoever waits for a count."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached = trio.Event()
        self.last_job: str | None = None

    def arm(self, target: int) -> None:
        """Reset the event so :meth:`wait` returns once ``count`` reaches ``target``."""
        self.target = target
        self.reached = trio.Event()
        if self.count >= target:
            self.reached.set()

    def hit(self, job_id: str) -> None:
        """Record one stage entering (called by the stage itself)."""
        self.count += 1
        self.last_job = job_id
        if self.count >= self.target:
            self.reached.set()

    async def wait(self) -> None:
        """Wait until the armed target is reached."""
        await self.reached.wait()


def _blocking_loop() -> None:
    while True:
        trio.from_thread.check_cancelled()
        time.sleep(0.0005)


def _make_stage(kind: str, entered: Entered) -> Callable[[StageContext], Any]:
    async def stage(context: StageContext) -> None:
        entered.hit(context.job_id)
        if kind == "wait":
            await trio.sleep_forever()
        elif kind == "sleep":
            await trio.sleep(86_400)
        elif kind == "subprocess":
            await context.run_process(["sleep", "60"])
        elif kind == "thread":
            await context.run_in_thread(_blocking_loop)
        else:  # pragma: no cover - guarded by the pipeline's constructor
            raise ValueError(kind)

    return stage


class WaitPipeline:
    """A one-stage pipeline whose stage waits (forever) in the way ``kind`` says."""

    def __init__(self, kind: str, entered: Entered) -> None:
        if kind not in ("wait", *STAGE_KINDS):
            raise ValueError(f"unknown stage kind {kind!r}")
        self.name = f"bench-{kind}"
        self._stage = Stage(name=kind, run=_make_stage(kind, entered))

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """No params: return an empty dict."""
        return {}

    def build(self, params: dict[str, Any]) -> Sequence[Stage]:
        """The single waiting stage."""
        return [self._stage]


def registry(entered: Entered) -> PipelineRegistry:
    """A registry with ``bench-wait`` and one pipeline per stage kind, sharing ``entered``."""
    return PipelineRegistry(WaitPipeline(kind, entered) for kind in ("wait", *STAGE_KINDS))
