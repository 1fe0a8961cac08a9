"""Cancel latency: ``runtime.cancel()`` to the subscriber receiving ``job-cancelled``.

For each stage kind (awaiting ``trio.sleep``, a subprocess, a thread) jobs run
one at a time: submit, wait until the stage is inside its wait (plus a 2 ms
settle so a subprocess has been spawned and a thread is looping), subscribe,
then time ``cancel()`` → ``job-cancelled`` received. The first ``WARMUP`` cancels
of each kind are not counted, on either side. The limit beside it is
the same wait in a bare trio task inside a cancel scope, timed from
``scope.cancel()`` to a memory channel receiving the task's "cancelled" note.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import trio
import trio.lowlevel

from aura_actors.runtime import EventType, RuntimeConfig, open_runtime
from bench.inproc.pipelines import STAGE_KINDS, Entered, _blocking_loop, registry
from bench.progress import say
from bench.results import Measure, RunResults
from bench.stats import summarize

SETTLE_SECONDS = 0.002
#: Cancels run first and not counted, on both sides (the first subprocess and thread are slow).
WARMUP = 3


async def aura_cancels(kind: str, count: int) -> list[float]:
    """``count`` cancel latencies (seconds) of jobs whose stage waits in ``kind``."""
    entered = Entered()
    config = RuntimeConfig(max_concurrent_jobs=4, data_dir=Path("/tmp/aura-bench"))
    latencies = []
    async with open_runtime(config, registry(entered)) as runtime:
        for _ in range(count):
            entered.arm(entered.count + 1)
            job = await runtime.submit(f"bench-{kind}")
            await entered.wait()
            await trio.sleep(SETTLE_SECONDS)
            with await runtime.subscribe_job(job.id) as subscription:
                # Read the job's replay (fetched from storage on the first read), so the
                # timed part below only waits for the live job-cancelled.
                await subscription.receive_batch()
                while True:
                    try:
                        subscription.receive_nowait()
                    except trio.WouldBlock:
                        break
                began = time.perf_counter()
                await runtime.cancel(job.id)
                async for event in subscription:
                    if event.type is EventType.JOB_CANCELLED:
                        latencies.append(time.perf_counter() - began)
                        break
            while runtime.running_count:
                await trio.lowlevel.checkpoint()
    return latencies


async def _kill_group(process: trio.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


async def _raw_task(
    kind: str,
    scope: trio.CancelScope,
    entered: Entered,
    note: trio.MemorySendChannel[str],
) -> None:
    with scope:
        entered.hit("")
        if kind == "sleep":
            await trio.sleep(3600)
        elif kind == "subprocess":
            await trio.run_process(
                ["sleep", "60"], start_new_session=True, deliver_cancel=_kill_group
            )
        else:
            await trio.to_thread.run_sync(_blocking_loop, abandon_on_cancel=True)
    note.send_nowait("cancelled")


async def raw_cancels(kind: str, count: int) -> list[float]:
    """The limit: the same waits in bare trio tasks, cancelled through their scopes."""
    entered = Entered()
    send, receive = trio.open_memory_channel[str](1)
    latencies = []
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            entered.arm(entered.count + 1)
            scope = trio.CancelScope()
            nursery.start_soon(_raw_task, kind, scope, entered, send)
            await entered.wait()
            await trio.sleep(SETTLE_SECONDS)
            began = time.perf_counter()
            scope.cancel()
            await receive.receive()
            latencies.append(time.perf_counter() - began)
    return latencies


def run(results: RunResults, counts: dict[str, int]) -> None:
    """Measure every stage kind, ``counts[kind]`` cancels each; add rows and raw samples."""
    raw: dict[str, dict[str, list[float]]] = {}
    for kind in STAGE_KINDS:
        count = counts[kind]
        say(f"cancel: {count} cancels of a {kind} stage (runtime, then bare trio)")
        aura_ms = [s * 1000 for s in trio.run(aura_cancels, kind, count + WARMUP)[WARMUP:]]
        raw_ms = [s * 1000 for s in trio.run(raw_cancels, kind, count + WARMUP)[WARMUP:]]
        raw[kind] = {"aura_ms": aura_ms, "trio_ms": raw_ms}
        aura, limit = summarize(aura_ms), summarize(raw_ms)
        say(
            f"cancel: {kind}: p50 {aura['p50']:.3f} ms, p99 {aura['p99']:.3f} ms, "
            f"max {aura['max']:.3f} ms (bare trio p99 {limit['p99']:.3f} ms)"
        )
        for stat in ("p50", "p99", "max"):
            results.add(
                Measure(
                    f"cancel {kind} x{count}",
                    f"cancel {stat}",
                    "ms",
                    aura[stat],
                    limit[stat],
                    "bare trio",
                    target="<= 5 ms" if stat == "p99" else "",
                )
            )
    results.scenarios["cancel"] = {"counts": counts, "samples": raw}
