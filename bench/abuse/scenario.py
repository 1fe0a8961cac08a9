"""The ``abuse`` scenario's driver: one server, each condition in turn, rows for the table.

The server (``aura-actors serve``, the embedded store in a fresh data dir, its
default limits) is pinned to one core and the attacker process to the other;
this process runs the probes, unpinned. Before the first condition it stores
``stored_jobs`` finished jobs (what a replay replays) and starts
``producers`` ticking jobs (the events slow readers do not read, the stream a
fresh client opens). After each abuse the attacker is stopped and the server
must return to its quiet descriptor count before the next condition starts,
so no leak is carried over (the count reached and the time it took are kept).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import trio

from bench.abuse.plan import CONDITIONS, GOAL_RATIO, QUIET, AbusePlan
from bench.abuse.probe import probe
from bench.http.loadgen import cancel_jobs, create_jobs
from bench.http.scenarios import _cpus
from bench.http.server import ServerFailed, aura_spec, running
from bench.http.wire import request
from bench.procstat import cpu_percent, listen_overflows, open_fds, sample
from bench.progress import ROOT, say
from bench.results import Measure, RunResults

JsonDict = dict[str, Any]
HOST = "127.0.0.1"


async def _health(port: int) -> JsonDict:
    answer: JsonDict = (await request(HOST, port, "GET", "/api/health")).json()
    return answer


async def _setup(port: int, plan: AbusePlan) -> list[str]:
    """Store the finished jobs, then start the producers; the producers' ids."""
    say(f"abuse: storing {plan.stored_jobs} finished jobs")
    await create_jobs(port, plan.stored_jobs, {"stages": 1, "ticks": 5, "tickSeconds": 0})
    with trio.fail_after(120):
        # The server's state, polled over HTTP: there is no event to wait on.
        while (jobs := (await _health(port))["jobs"])["running"] + jobs["queued"]:  # noqa: ASYNC110
            await trio.sleep(0.2)
    params = {"stages": 1, "ticks": 100_000, "tickSeconds": plan.tick_seconds}
    return await create_jobs(port, plan.producers, params)


@contextlib.asynccontextmanager
async def _attacker(
    name: str, port: int, config: JsonDict, cpu: int | None
) -> AsyncIterator[JsonDict]:
    """Run the attacker of ``name`` (none for a quiet condition) until the block ends.

    Yields once the attacker says ``ready``; on exit it is stopped (SIGTERM) and
    its counters are filled into the yielded dict.
    """
    counts: JsonDict = {}
    if name in QUIET:
        yield counts
        return
    command = [sys.executable, "-m", "bench.abuse.attacks", name, "--port", str(port)]
    # Each abuse from an address of its own: a penalty earned in one condition
    # must not carry over to the next.
    source = f"127.0.0.{2 + CONDITIONS.index(name)}"
    command += ["--config", json.dumps({**config, "source": source})]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None
    try:
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(process.pid, {cpu})
        out = bytearray()
        with trio.fail_after(120):
            while b"ready\n" not in out:
                chunk = await process.stdout.receive_some()
                if not chunk:
                    raise RuntimeError(f"attacker {name} exited before it was ready")
                out += chunk
        yield counts
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            while chunk := await process.stdout.receive_some():
                out += chunk
            await process.wait()
        tail = out.partition(b"ready\n")[2]
        counts.update(json.loads(tail) if tail.strip() else {"exit_status": process.returncode})
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
        await process.stdout.aclose()


async def _settle(pid: int, limit: int, seconds: float) -> tuple[int, float]:
    """Wait until ``pid`` holds at most ``limit`` descriptors (at most ``seconds``);
    the count reached and the time it took."""
    began = time.monotonic()
    with trio.move_on_after(seconds):
        while open_fds(pid) > limit:  # noqa: ASYNC110 (another process: no event to wait on)
            await trio.sleep(0.05)
    return open_fds(pid), time.monotonic() - began


async def _condition(
    name: str, port: int, pid: int, plan: AbusePlan, config: JsonDict, cpu: int | None
) -> JsonDict:
    """One condition: abuse (if any) + probes over the window, then the settling."""
    stream_path = f"/api/jobs/{config['job_id']}/events"
    async with _attacker(name, port, config, cpu) as counts:
        await trio.sleep(plan.warmup)
        before, began, overflows = sample(pid), time.monotonic(), listen_overflows()
        probed = await probe(
            port, plan.window, plan.health_interval, plan.first_event_samples, stream_path
        )
        after, seconds = sample(pid), time.monotonic() - began
        overflows = listen_overflows() - overflows
        fds_under_abuse = open_fds(pid)
        subscribers_under_abuse = (await _health(port))["subscribers"]
    fds, settle_seconds = await _settle(pid, config["quiet_fds"], plan.settle_timeout)
    return {
        "probe": probed.to_json(),
        "attacker": counts,
        "window_seconds": seconds,
        "server_cpu_percent": cpu_percent(before, after, seconds),
        "server_rss_bytes": after.rss_bytes,
        "listen_overflows": overflows,
        "fds_under_abuse": fds_under_abuse,
        "subscribers_under_abuse": subscribers_under_abuse,
        "fds_settled": fds,
        "settle_seconds": settle_seconds,
        "back_to_quiet": fds <= config["quiet_fds"],
    }


async def _drive(port: int, pid: int, plan: AbusePlan, cpu: int | None) -> JsonDict:
    producers = await _setup(port, plan)
    await trio.sleep(0.5)
    quiet_fds = min([open_fds(pid), open_fds(pid)])
    config = {**asdict(plan), "job_id": producers[0], "quiet_fds": quiet_fds}
    # A probe whose figures are dropped: the first connections and requests of a fresh
    # server (and of this process) are slower, which would flatter every later ratio.
    stream_path = f"/api/jobs/{producers[0]}/events"
    await probe(port, plan.warmup, plan.health_interval, plan.first_event_samples, stream_path)
    await _settle(pid, quiet_fds, plan.settle_timeout)
    conditions: JsonDict = {}
    for name in CONDITIONS:
        say(f"abuse: {name} ({plan.window:g} s window)")
        result = await _condition(name, port, pid, plan, config, cpu)
        conditions[name] = result
        health, first = result["probe"]["health_ms"], result["probe"]["first_event_ms"]
        say(
            f"abuse: {name}: health p50 {health['p50']:.1f} ms, p99 {health['p99']:.1f} ms "
            f"({health['count']:.0f} requests), first event median {first['p50']:.1f} ms; "
            f"fds {result['fds_under_abuse']} -> {result['fds_settled']} (quiet {quiet_fds}); "
            f"listen overflows {result['listen_overflows']}; "
            f"attacker {result['attacker']}; errors {result['probe']['errors']}"
        )
    await cancel_jobs(port, producers)
    _ratios(conditions)
    return {"plan": asdict(plan), "quiet_fds": quiet_fds, "conditions": conditions}


def _ratio(value: float, reference: float) -> float | None:
    return value / reference if reference > 0 else None


def _ratios(conditions: JsonDict) -> None:
    """Each condition's ratios to ``quiet``, and whether the goal (health p99) holds."""
    quiet = conditions["quiet"]["probe"]
    for name, condition in conditions.items():
        probed = condition["probe"]
        p99 = _ratio(probed["health_ms"]["p99"], quiet["health_ms"]["p99"])
        first = _ratio(probed["first_event_ms"]["p50"], quiet["first_event_ms"]["p50"])
        condition["health_p99_ratio"] = p99
        condition["first_event_ratio"] = first
        condition["goal_met"] = None if name in QUIET or p99 is None else p99 <= GOAL_RATIO


def run(results: RunResults, plan: AbusePlan) -> None:
    """Run every condition against one aura-actors server; add rows and raw data."""
    spec = aura_spec()
    if spec is None:
        results.scenarios["abuse"] = {"skipped": "aura-actors serve is not available"}
        return
    server_cpu, load_cpu = _cpus(plan.pin)
    max_jobs = plan.stored_jobs + plan.producers + 16
    try:
        with running(spec, max_jobs, cpu=server_cpu) as server:
            say(f"abuse: server on port {server.port} (pid {server.pid})")
            data = trio.run(_drive, server.port, server.pid, plan, load_cpu)
    except (ServerFailed, RuntimeError) as exc:
        results.scenarios["abuse"] = {"skipped": f"{type(exc).__name__}: {exc}"}
        say(f"abuse: failed: {exc}")
        return
    data["goal_ratio"] = GOAL_RATIO
    results.scenarios["abuse"] = data
    _add_rows(results, data)


def _add_rows(results: RunResults, data: JsonDict) -> None:
    quiet = data["conditions"]["quiet"]["probe"]
    for name, condition in data["conditions"].items():
        scenario = f"abuse {name}"
        health, first = condition["probe"]["health_ms"], condition["probe"]["first_event_ms"]
        target = "" if name in QUIET else f"<= {GOAL_RATIO:g}x quiet"
        for stat in ("p50", "p99"):
            value, reference = health[stat], quiet["health_ms"][stat]
            goal = target if stat == "p99" else ""
            results.add(
                Measure(scenario, f"health {stat}", "ms", value, reference, "quiet", target=goal)
            )
        results.add(
            Measure(
                scenario,
                "first event median",
                "ms",
                first["p50"],
                quiet["first_event_ms"]["p50"],
                "quiet",
            )
        )
        results.add(
            Measure(
                scenario,
                "server fds after the abuse",
                "fds",
                condition["fds_settled"],
                data["quiet_fds"],
                "quiet",
                target="1x quiet",
            )
        )
