"""The ``capacity`` scenario: delivered events/s per server core at p99 <= 50 ms.

For each transport (SSE, WebSocket) the offered load rises step by step:
``jobs`` synthetic jobs ticking every ``tick_seconds``, and ``clients`` readers
(client *i* follows job *i* mod ``jobs``), so the offered load is
``clients / tick_seconds`` events/s. At each step both servers (aura-actors and
the peer, started once, both pinned to the same core) are measured one after
the other (their order alternates from step to step), each with ``repeats``
measuring windows on one set of connections: the median and the spread
(min-max) of each window's p99, delivered events/s and server CPU µs per
delivered event are kept.

The **capacity** of a server is the highest median delivered events/s among
the steps whose median p99 is <= 50 ms. (The offered load is nominal: a loaded
server stretches its jobs' ticks, so what is delivered is compared with what
the jobs emitted only through the latency, which grows once a server falls
behind.) The server is pinned to one core, so that figure is per core; its
CPU µs per event is the server's CPU over all
that step's windows divided by the events they delivered. A CPU calibration figure (a fixed
pure-Python loop timed on the server's core before and after the scenario) is
saved beside the results, so runs on different days can be compared.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from bench.http.scenarios import _cpus, run_loadgen
from bench.http.server import PEER, ServerFailed, aura_spec, running
from bench.progress import say
from bench.results import Measure, RunResults

JsonDict = dict[str, Any]

#: The latency bound of a capacity point.
P99_BOUND_MS = 50.0
TRANSPORT_LABELS = {"sse": "SSE", "ws": "WebSocket"}


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    """The steps of the capacity scenario."""

    jobs: int
    client_steps: tuple[int, ...]
    tick_seconds: float = 0.1
    repeats: int = 3
    window: float = 2.0
    warmup: float = 1.0
    transports: tuple[str, ...] = ("sse", "ws")
    servers: tuple[str, ...] = ("aura", "peer")
    pin: bool = True


def calibrate(cpu: int | None, rounds: int = 5) -> float:
    """Milliseconds of a fixed pure-Python loop (best of ``rounds``), run on ``cpu``."""
    before = os.sched_getaffinity(0)
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
    try:
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            total = 0
            for i in range(1_000_000):
                total += i * i % 7
            best = min(best, time.perf_counter() - started)
        return best * 1000.0
    finally:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, before)


def _summary(values: list[float]) -> JsonDict:
    finite = [v for v in values if v == v]
    if not finite:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "runs": values}
    return {
        "median": statistics.median(finite),
        "min": min(finite),
        "max": max(finite),
        "runs": values,
    }


def point_of(result: JsonDict, offered: float) -> JsonDict:
    """One load step's figures over its windows: median and spread of each."""
    windows = result.get("windows") or [result]
    return {
        "clients": result["clients"],
        "jobs": result["jobs"],
        "offered_per_second": offered,
        "connected": result["connected"],
        "failed": result["failed"],
        "delivered_per_second": _summary([w["events_per_second"] for w in windows]),
        "p99_ms": _summary([w["latency_ms"]["p99"] for w in windows]),
        "p50_ms": _summary([w["latency_ms"]["p50"] for w in windows]),
        "cpu_us_per_event": _summary([w["server_cpu_us_per_event"] for w in windows]),
        "server_cpu_percent": _summary([w["server_cpu_percent"] for w in windows]),
        # /proc counts CPU in 10 ms ticks: over all windows the figure is less grainy.
        "cpu_us_per_event_pooled": pooled_cpu(windows),
    }


def pooled_cpu(
    windows: list[JsonDict],
    per_event: Callable[[JsonDict], float] = itemgetter("server_cpu_us_per_event"),
) -> float:
    """CPU µs per event over all ``windows`` (``per_event``: a window's figure; the
    server's unless told)."""
    events = sum(w["events"] for w in windows)
    cpu_us = sum(per_event(w) * w["events"] for w in windows if w["events"])
    return cpu_us / events if events else float("nan")


def capacity_of(points: list[JsonDict], bound_ms: float = P99_BOUND_MS) -> JsonDict | None:
    """The point that sets the capacity at p99 <= ``bound_ms`` (see the module docstring),
    or ``None``."""
    passing = [p for p in points if p["p99_ms"]["median"] <= bound_ms]
    if not passing:
        return None
    return max(passing, key=lambda p: p["delivered_per_second"]["median"])


def _measure_step(
    server: Any, plan: CapacityPlan, transport: str, clients: int, load_cpu: int | None
) -> JsonDict:
    config = {
        "jobs": plan.jobs,
        "clients": clients,
        "window": plan.window,
        "repeats": plan.repeats,
        "warmup": plan.warmup,
        "tick_seconds": plan.tick_seconds,
        "transport": transport,
    }
    timeout = 120 + plan.window * plan.repeats + clients / 20
    result = run_loadgen("latency", server.port, server.pid, config, load_cpu, timeout)
    point = point_of(result, clients / plan.tick_seconds)
    say(
        f"capacity/{server.name} {TRANSPORT_LABELS[transport]} offered "
        f"{point['offered_per_second']:,.0f}/s: delivered "
        f"{point['delivered_per_second']['median']:,.0f}/s, p99 "
        f"{point['p99_ms']['median']:.1f} ms [{point['p99_ms']['min']:.1f}-"
        f"{point['p99_ms']['max']:.1f}], {point['cpu_us_per_event']['median']:.0f} µs/event"
    )
    return point


def run(results: RunResults, plan: CapacityPlan) -> None:
    """Measure both servers step by step, side by side; add rows and raw curves."""
    server_cpu, load_cpu = _cpus(plan.pin)
    specs = {"peer": PEER}
    aura = aura_spec()
    if aura is not None:
        specs["aura"] = aura
    names = [name for name in plan.servers if name in specs]
    data: JsonDict = {
        "p99_bound_ms": P99_BOUND_MS,
        "plan": {
            "jobs": plan.jobs,
            "client_steps": list(plan.client_steps),
            "tick_seconds": plan.tick_seconds,
            "repeats": plan.repeats,
            "window": plan.window,
        },
        "calibration_ms": {"before": calibrate(server_cpu)},
        "curves": {t: {n: [] for n in names} for t in plan.transports},
        "skipped": {},
    }
    say(f"capacity: CPU calibration {data['calibration_ms']['before']:.1f} ms (1e6-step loop)")
    max_jobs = max(plan.jobs, 16)
    with contextlib.ExitStack() as stack:
        servers = {}
        for name in names:
            try:
                servers[name] = stack.enter_context(running(specs[name], max_jobs, cpu=server_cpu))
            except ServerFailed as exc:
                data["skipped"][name] = str(exc)[:500]
        for transport in plan.transports:
            for index, clients in enumerate(plan.client_steps):
                order = sorted(servers, reverse=bool(index % 2))
                for name in order:
                    try:
                        point = _measure_step(servers[name], plan, transport, clients, load_cpu)
                    except (RuntimeError, OSError) as exc:
                        say(f"capacity/{name}: step {clients} failed: {exc}")
                        continue
                    data["curves"][transport][name].append(point)
    data["calibration_ms"]["after"] = calibrate(server_cpu)
    results.scenarios["capacity"] = data
    _add_rows(results, data)


def _add_rows(results: RunResults, data: JsonDict) -> None:
    calib = data["calibration_ms"]
    results.add(
        Measure(
            "capacity calibration",
            "pure-Python 1e6-step loop (before / after)",
            "ms",
            calib["before"],
            calib["after"],
            "after",
        )
    )
    nan = float("nan")
    for transport, curves in data["curves"].items():
        label = TRANSPORT_LABELS[transport]
        best = {name: capacity_of(points) for name, points in curves.items()}
        data.setdefault("capacity", {})[transport] = best

        def value(name: str, key: str, best: JsonDict = best) -> float:
            point = best.get(name)
            if point is None:
                return nan
            found = point[key]
            return float(found["median"] if isinstance(found, dict) else found)

        scenario = f"capacity {label} (p99 <= {P99_BOUND_MS:g} ms)"
        results.add(
            Measure(
                scenario,
                "delivered events/s per server core",
                "events/s",
                value("aura", "delivered_per_second"),
                value("peer", "delivered_per_second"),
                "peer",
                better="higher",
                target=">= 1.5x peer",
            )
        )

        def cpu(name: str, best: JsonDict = best, curves: JsonDict = curves) -> float:
            # At the capacity point; without one, at the lowest step (the same load for both).
            point = best.get(name) or (curves.get(name) or [None])[0]
            return nan if point is None else float(point["cpu_us_per_event_pooled"])

        results.add(
            Measure(
                scenario,
                "server CPU per delivered event (capacity point, else lowest step)",
                "µs",
                cpu("aura"),
                cpu("peer"),
                "peer",
                target="<= 0.7x peer",
            )
        )
