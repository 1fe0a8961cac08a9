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


def add_rows(results: RunResults, data: JsonDict) -> None:
    """Add the rows of whatever the run measured (a failed part leaves its rows empty)."""
    single, clustered = data.get("single"), data.get("cluster")
    plan = data["plan"]
    scenario = f"cluster SSE {plan['jobs']} x {plan['clients']}"

    def beside_one(name: str, unit: str, *path: str, **kw: Any) -> None:
        value, reference = _get(clustered, *path), _get(single, *path)
        results.add(Measure(scenario, name, unit, value, reference, "one process", **kw))

    beside_one("delivery p99", "ms", "latency_ms", "p99", target="<= 20 ms")
    beside_one("delivery p50", "ms", "latency_ms", "p50")
    beside_one("delivered events/s", "events/s", "events_per_second", better="higher")
    beside_one("API node CPU (one process: the server)", "% of a core", "server_cpu_percent")
    for other in ("worker", "redis"):
        value = _get(clustered, "other_cpu_percent", other)
        results.add(Measure(scenario, f"{other} CPU over the load run", "% of a core", value))
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
