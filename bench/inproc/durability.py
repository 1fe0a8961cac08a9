"""What durability costs: the runtime on SQLite beside the same runtime in memory.

Three measures, each run on both storages in the same process run:

- **submissions/s**: ``N`` jobs submitted by 50 concurrent callers; with
  SQLite each ``submit`` returns only once its job row is committed (what a
  202 waits for). Quick one-tick jobs, so the runners keep up.
- **events/s** and **CPU per event**: ``J`` jobs of many ticks (``tickSeconds``
  0) followed by ``S`` subscribers each, timed until every job has ended and
  every subscriber has read its last event; events/s counts what the jobs
  emitted. With SQLite every event is committed before any subscriber sees
  it (group commit per batch), so subscribers get larger batches, in which
  newer progress supersedes older: they are sent fewer intermediate
  ``step-progress`` events (the raw results keep the count delivered).
- **RSS after N finished jobs** (SQLite only): resident memory after ``N``
  jobs have run and ended, beside the same process before them. Finished jobs
  leave memory once stored, so this stays flat as ``N`` grows.

``fsync="always"`` (power-loss durability) is measured for submissions too.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from aura_actors.pipelines import default_pipelines
from aura_actors.runtime import FsyncMode, Runtime, RuntimeConfig, open_runtime
from bench.progress import say
from bench.results import Measure, RunResults

SUBMITTERS = 50
#: What finished jobs may add to a server's memory, at most (issue 9).
RSS_BUDGET_MIB = 25.0
QUICK_JOB = {"stages": 1, "ticks": 1, "tickSeconds": 0}


def _config(data_dir: Path, persist: bool, fsync: FsyncMode = "normal") -> RuntimeConfig:
    return RuntimeConfig(
        data_dir=data_dir,
        persist_jobs=persist,
        fsync=fsync,
        max_concurrent_jobs=64,
        max_queued_jobs=1_000_000,
    )


async def _wait_idle(runtime: Runtime) -> None:
    while runtime.live_count:  # noqa: ASYNC110 - a benchmark's own end condition
        await trio.sleep(0.01)


async def _submit_many(runtime: Runtime, count: int) -> float:
    """Seconds until ``count`` submissions have all returned (stored)."""
    remaining = iter(range(count))
    start = time.perf_counter()

    async def submitter() -> None:
        for _ in remaining:
            await runtime.submit("synthetic", QUICK_JOB)

    async with trio.open_nursery() as nursery:
        for _ in range(SUBMITTERS):
            nursery.start_soon(submitter)
    return time.perf_counter() - start


async def submissions(persist: bool, count: int, fsync: FsyncMode = "normal") -> float:
    """Submissions per second on one storage."""
    with tempfile.TemporaryDirectory(prefix="aura-bench-durability-") as folder:
        async with open_runtime(_config(Path(folder), persist, fsync), default_pipelines()) as rt:
            seconds = await _submit_many(rt, count)
            await _wait_idle(rt)
    return count / seconds


async def delivery(
    persist: bool, jobs: int, ticks: int, subscribers: int
) -> tuple[float, float, int]:
    """(emitted events/s, CPU µs per emitted event, events delivered) of ``jobs`` jobs."""
    params = {"stages": 1, "ticks": ticks, "tickSeconds": 0}
    delivered = 0
    with tempfile.TemporaryDirectory(prefix="aura-bench-durability-") as folder:
        async with open_runtime(_config(Path(folder), persist), default_pipelines()) as rt:
            cpu = time.process_time()
            start = time.perf_counter()

            async def reader(job_id: str) -> None:
                nonlocal delivered
                with await rt.subscribe_job(job_id) as subscription:
                    while batch := await subscription.receive_batch():
                        delivered += len(batch)

            async with trio.open_nursery() as nursery:
                for _ in range(jobs):
                    record = await rt.submit("synthetic", params)
                    for _ in range(subscribers):
                        nursery.start_soon(reader, record.id)
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
    emitted = jobs * (ticks + 6)
    return emitted / elapsed, cpu / emitted * 1e6, delivered


def _rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def finished_jobs_rss(count: int) -> tuple[float, float]:
    """(RSS growth in MiB after ``count`` finished jobs, after ``count // 10``) on SQLite."""
    with tempfile.TemporaryDirectory(prefix="aura-bench-durability-") as folder:
        async with open_runtime(_config(Path(folder), True), default_pipelines()) as rt:
            await _submit_many(rt, 200)  # warm up: every path once
            await _wait_idle(rt)
            gc.collect()
            base = _rss_mib()
            await _submit_many(rt, count // 10)
            await _wait_idle(rt)
            gc.collect()
            early = _rss_mib() - base
            await _submit_many(rt, count - count // 10)
            await _wait_idle(rt)
            gc.collect()
            return _rss_mib() - base, early


def run(results: RunResults, submit_count: int, delivery_shape: tuple[int, int, int]) -> None:
    """Measure every row; memory is the reference of each SQLite figure."""
    raw: dict[str, Any] = {}
    memory_rate = trio.run(submissions, False, submit_count)
    for fsync in ("normal", "always"):
        rate = trio.run(submissions, True, submit_count, fsync)
        raw[f"submissions_sqlite_{fsync}"] = rate
        say(
            f"durability: {submit_count:,} submissions, SQLite fsync={fsync}: {rate:,.0f}/s "
            f"(memory {memory_rate:,.0f}/s)"
        )
        results.add(
            Measure(
                f"durability submit (fsync {fsync})",
                "submissions/s",
                "jobs/s",
                rate,
                memory_rate,
                "in memory",
                better="higher",
            )
        )
    raw["submissions_memory"] = memory_rate
    jobs, ticks, subscribers = delivery_shape
    mem_rate, mem_cpu, mem_delivered = trio.run(delivery, False, jobs, ticks, subscribers)
    sql_rate, sql_cpu, sql_delivered = trio.run(delivery, True, jobs, ticks, subscribers)
    say(
        f"durability: {jobs} jobs x {ticks} ticks x {subscribers} subscribers: SQLite "
        f"{sql_rate:,.0f} events/s ({sql_cpu:.1f} µs CPU/event), memory {mem_rate:,.0f}/s "
        f"({mem_cpu:.1f} µs)"
    )
    scenario = f"durability delivery J={jobs} S={subscribers}"
    results.add(
        Measure(
            scenario,
            "events/s",
            "events/s",
            sql_rate,
            mem_rate,
            "in memory",
            better="higher",
        )
    )
    results.add(Measure(scenario, "CPU per emitted event", "µs", sql_cpu, mem_cpu, "in memory"))
    grown, early = trio.run(finished_jobs_rss, submit_count)
    say(
        f"durability: RSS after {submit_count:,} finished jobs: +{grown:.1f} MiB "
        f"(+{early:.1f} MiB after {submit_count // 10:,})"
    )
    results.add(
        Measure(
            f"durability memory N={submit_count}",
            "RSS growth after N finished jobs",
            "MiB",
            grown,
            RSS_BUDGET_MIB,
            "the budget",
            target=f"≤ {RSS_BUDGET_MIB:g} MiB (after N/10: {early:.1f})",
        )
    )
    raw.update(
        delivery={
            "memory": {
                "events_per_second": mem_rate,
                "cpu_us": mem_cpu,
                "delivered": mem_delivered,
            },
            "sqlite": {
                "events_per_second": sql_rate,
                "cpu_us": sql_cpu,
                "delivered": sql_delivered,
            },
        },
        rss_mib={"n": grown, "n_over_10": early},
    )
    results.scenarios["durability"] = raw
