"""One point of the spawn/memory curve, run in a fresh process so RSS deltas are clean.

``python -m bench.inproc.spawn_worker --kind aura|trio --n N [--tracemalloc] [--cancels K]``
prints one JSON object: spawn rate, RSS and (with ``--tracemalloc``) traced bytes
per job, cancel latency of ``K`` of the ``N`` idle jobs, and the time to shut all
of them down. A traced run prints its figures and exits without the shutdown
(tracing makes it slow, and its time is measured by the untraced run).

``aura`` submits ``N`` jobs of a one-stage pipeline whose stage awaits
``trio.sleep_forever()`` (``RuntimeConfig(max_concurrent_jobs=N)``); ``trio`` starts
``N`` bare tasks, each holding a cancel scope and a nursery with one child task:
the limit the runtime is measured against.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import trio

from aura_actors.runtime import EventType, RuntimeConfig, open_runtime
from bench.inproc.pipelines import Entered, registry
from bench.procstat import self_rss_bytes

WARMUP = 64


def _memory_mark(traced: bool) -> tuple[int, int]:
    gc.collect()
    rss = self_rss_bytes()
    current = tracemalloc.get_traced_memory()[0] if traced else 0
    return rss, current


async def _run_aura(n: int, cancels: int, traced: bool) -> dict[str, Any]:
    entered = Entered()
    config = RuntimeConfig(
        max_concurrent_jobs=n + WARMUP, max_queued_jobs=0, data_dir=Path("/tmp/aura-bench")
    )
    result: dict[str, Any] = {}
    async with open_runtime(config, registry(entered)) as runtime:
        # Warm up: every code path once, so the measured jobs pay no one-off costs.
        entered.arm(WARMUP)
        warm = [(await runtime.submit("bench-wait")).id for _ in range(WARMUP)]
        await entered.wait()
        for job_id in warm:
            await runtime.cancel(job_id)
        await trio.sleep(0.05)
        entered.count = 0
        rss0, traced0 = _memory_mark(traced)
        entered.arm(n)
        start = time.perf_counter()
        ids = [(await runtime.submit("bench-wait")).id for _ in range(n)]
        submitted = time.perf_counter()
        await entered.wait()
        ready = time.perf_counter()
        rss1, traced1 = _memory_mark(traced)
        result.update(
            spawn_seconds=ready - start,
            submit_seconds=submitted - start,
            rss_bytes=rss1 - rss0,
            traced_bytes=traced1 - traced0,
        )
        latencies = []
        step = max(1, n // max(1, cancels))
        for job_id in ids[::step][:cancels]:
            with await runtime.subscribe_job(job_id) as subscription:
                # Read the job's replay (fetched from storage on the first read), so the
                # timed part below only waits for the live job-cancelled.
                await subscription.receive_batch()
                while True:
                    try:
                        subscription.receive_nowait()
                    except trio.WouldBlock:
                        break
                began = time.perf_counter()
                await runtime.cancel(job_id)
                async for event in subscription:
                    if event.type is EventType.JOB_CANCELLED:
                        latencies.append(time.perf_counter() - began)
                        break
        result["cancel_seconds"] = latencies
        if traced:
            _emit_and_exit(result)
        shutdown_start = time.perf_counter()
    result["shutdown_seconds"] = time.perf_counter() - shutdown_start
    return result


def _emit_and_exit(result: dict[str, Any]) -> None:
    """Print the result and leave at once: a traced run needs no (slow, traced) shutdown."""
    result["shutdown_seconds"] = None
    json.dump(result, sys.stdout)
    sys.stdout.flush()
    os._exit(0)


async def _bare_task(entered: Entered, finished: Entered, scopes: list[trio.CancelScope]) -> None:
    with trio.CancelScope() as scope:
        scopes.append(scope)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_bare_child, entered)
    finished.hit("")


async def _bare_child(entered: Entered) -> None:
    entered.hit("")
    await trio.sleep_forever()


async def _run_trio(n: int, cancels: int, traced: bool) -> dict[str, Any]:
    entered, finished = Entered(), Entered()
    scopes: list[trio.CancelScope] = []
    result: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        entered.arm(WARMUP)
        for _ in range(WARMUP):
            nursery.start_soon(_bare_task, entered, finished, scopes)
        await entered.wait()
        for scope in scopes:
            scope.cancel()
        await trio.sleep(0.05)
        scopes.clear()
        entered.count = finished.count = 0
        rss0, traced0 = _memory_mark(traced)
        entered.arm(n)
        start = time.perf_counter()
        for _ in range(n):
            nursery.start_soon(_bare_task, entered, finished, scopes)
        submitted = time.perf_counter()
        await entered.wait()
        ready = time.perf_counter()
        rss1, traced1 = _memory_mark(traced)
        result.update(
            spawn_seconds=ready - start,
            submit_seconds=submitted - start,
            rss_bytes=rss1 - rss0,
            traced_bytes=traced1 - traced0,
        )
        latencies = []
        step = max(1, n // max(1, cancels))
        for scope in scopes[::step][:cancels]:
            finished.arm(finished.count + 1)
            began = time.perf_counter()
            scope.cancel()
            await finished.wait()
            latencies.append(time.perf_counter() - began)
        result["cancel_seconds"] = latencies
        if traced:
            _emit_and_exit(result)
        shutdown_start = time.perf_counter()
        nursery.cancel_scope.cancel()
    result["shutdown_seconds"] = time.perf_counter() - shutdown_start
    return result


def measure(kind: str, n: int, cancels: int, traced: bool) -> dict[str, Any]:
    """Run one point in this process and return its raw figures."""
    if traced:
        tracemalloc.start()
    runner = _run_aura if kind == "aura" else _run_trio
    result = trio.run(runner, n, cancels, traced)
    result.update(kind=kind, n=n, traced=traced)
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run one point, print its JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=("aura", "trio"), required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--cancels", type=int, default=0)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.kind, args.n, args.cancels, args.tracemalloc)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
