"""The cluster scenario's rows: the cluster beside one process, 2 workers beside 1."""

from __future__ import annotations

import math
from typing import Any

from bench.results import Measure, RunResults

JsonDict = dict[str, Any]


def _get(data: JsonDict | None, *path: str) -> float:
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return math.nan
        value = value[key]
    return math.nan if value is None else float(value)


def _steps(part: JsonDict | None) -> dict[float, JsonDict]:
    if not isinstance(part, dict):
        return {}
    return {float(step["tick_seconds"]): step for step in part.get("steps", [])}


def add_rows(results: RunResults, data: JsonDict) -> None:
    """Add the rows of whatever the run measured (a failed part leaves its rows empty)."""
    single, clustered = data.get("single"), data.get("cluster")
    plan = data["plan"]
    scenario = f"cluster SSE {plan['jobs']} x {plan['clients']}"
    single_steps, cluster_steps = _steps(single), _steps(clustered)
    ticks = sorted(set(single_steps) | set(cluster_steps), reverse=True)  # lightest first
    headline = min(ticks) if ticks else None

    def beside_one(name: str, unit: str, tick: float, *path: str, **kw: Any) -> None:
        value = _get(cluster_steps.get(tick), *path)
        reference = _get(single_steps.get(tick), *path)
        results.add(Measure(scenario, name, unit, value, reference, "one process", **kw))

    for tick in ticks:
        offered = f"{plan['clients'] / tick:,.0f} offered/s"
        goal = {"target": "<= 20 ms"} if tick == headline else {}
        beside_one(f"delivery p99, {offered}", "ms", tick, "p99_ms", "median", **goal)
        beside_one(f"delivery p50, {offered}", "ms", tick, "p50_ms", "median")
        beside_one(
            f"delivered events/s, {offered}",
            "events/s",
            tick,
            "delivered_per_second",
            "median",
            better="higher",
        )
    if headline is not None:
        beside_one(
            "API node CPU per delivered event (one process: the server)",
            "µs",
            headline,
            "cpu_us_per_event_pooled",
        )
        for other in ("worker", "redis"):
            value = _get(cluster_steps.get(headline), f"{other}_cpu_us_per_event_pooled")
            results.add(Measure(scenario, f"{other} CPU per delivered event", "µs", value))
        beside_one(
            "API node CPU (one process: the server)",
            "% of a core",
            headline,
            "server_cpu_percent",
            "median",
        )
        for other in ("worker", "redis"):
            value = _get(cluster_steps.get(headline), f"{other}_cpu_percent")
            results.add(Measure(scenario, f"{other} CPU", "% of a core", value))
    results.add(
        Measure(
            scenario,
            "capacity at p99 <= 20 ms",
            "events/s",
            _get(clustered, "capacity", "delivered_per_second", "median"),
            _get(single, "capacity", "delivered_per_second", "median"),
            "one process",
            better="higher",
        )
    )
    for stat in ("p50", "p99"):
        value = _get(data.get("cancel"), "latency_ms", stat)
        results.add(Measure("cluster cancel across nodes", f"cancel {stat}", "ms", value))
    dead = data.get("dead_worker")
    timeout = _get(dead, "worker_timeout_s")
    running_again = _get(dead, "median_running_again_s")
    results.add(
        Measure(
            "cluster dead worker (SIGKILL)",
            "kill → job running again (median)",
            "s",
            running_again,
            timeout,
            "--worker-timeout",
            target="<= worker timeout + a reaper pass",
        )
    )
    one, two = data.get("throughput_1"), data.get("throughput_2")
    results.add(
        Measure(
            "cluster throughput",
            "busy jobs/s, 2 workers",
            "jobs/s",
            _get(two, "jobs_per_second"),
            _get(one, "jobs_per_second"),
            "1 worker",
            better="higher",
        )
    )
