"""The ``cluster`` scenario: delivery, cancel, a dead worker and throughput, on real processes.

- **delivery**: ``jobs`` × ``clients`` SSE (the HTTP scenario's load generator)
  against one process (``aura-actors serve``, SQLite) and against a cluster of
  1 API node + 1 worker on a private Redis, in the same run, at each load step
  (the jobs' tick seconds: offered events/s is ``clients / tick``), each step's
  figures the median of ``repeats`` windows; the CPU per delivered event of the
  server (the API node), the worker and Redis; the capacity at p99 <= 20 ms.
  Nothing is pinned: the point of the cluster is to use more than one core.
- **cancel**: the load generator's cancel measure against the API node, the
  jobs running on the worker (POST → ``job-cancelled`` on the stream).
- **dead worker**: a job's worker killed with SIGKILL; seconds until its stream
  shows the next attempt (``warning``, then ``job-status`` Running).
- **throughput**: busy jobs through 1 worker, then 2: jobs/s to done.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import trio

from bench.cluster import measures
from bench.cluster.nodes import Cluster, NodeFailed, cluster, redis_server
from bench.cluster.plan import ClusterPlan
from bench.cluster.report import add_rows
from bench.http.capacity import capacity_of, point_of, pooled_cpu
from bench.http.scenarios import run_loadgen
from bench.http.server import aura_spec, running
from bench.progress import say
from bench.results import RunResults

JsonDict = dict[str, Any]

#: The delivery goal: p99 at or under this, in ms (issue 10).
P99_GOAL_MS = 20.0


def _latency_config(plan: ClusterPlan, tick: float) -> JsonDict:
    return {
        "jobs": plan.jobs,
        "clients": plan.clients,
        "silent": 0.0,
        "window": plan.window,
        "repeats": plan.repeats,
        "tick_seconds": tick,
        "warmup": plan.warmup,
        "transport": "sse",
    }


def _timeout(plan: ClusterPlan) -> float:
    return 180 + plan.window * plan.repeats + plan.clients / 10


def _say_step(label: str, point: JsonDict) -> None:
    say(
        f"cluster: {label}: {point['offered_per_second']:,.0f} offered: p50 "
        f"{point['p50_ms']['median']:.1f} ms, p99 {point['p99_ms']['median']:.1f} ms "
        f"({point['p99_ms']['min']:.1f}-{point['p99_ms']['max']:.1f}), "
        f"{point['delivered_per_second']['median']:,.0f} events/s, server "
        f"{point['cpu_us_per_event_pooled']:.0f} us CPU/event"
    )


def _others_cpu(name: str) -> Callable[[JsonDict], float]:
    """A window's CPU µs per event of process ``name`` (beside the server)."""
    return lambda window: float(window["others_cpu_us_per_event"][name])


def _step(result: JsonDict, tick: float, plan: ClusterPlan) -> JsonDict:
    """A load step's figures (the median window's), with the raw result."""
    point = point_of(result, plan.clients / tick)
    point["tick_seconds"] = tick
    windows = result.get("windows") or [result]
    for name in ("worker", "redis"):
        if all(name in w.get("others_cpu_us_per_event", {}) for w in windows):
            point[f"{name}_cpu_us_per_event_pooled"] = pooled_cpu(windows, _others_cpu(name))
            point[f"{name}_cpu_percent"] = statistics.median(
                w["others_cpu_percent"][name] for w in windows
            )
    point["raw"] = result
    return point


def _single_delivery(plan: ClusterPlan) -> JsonDict:
    spec = aura_spec()
    if spec is None:
        raise NodeFailed("aura-actors serve is not available")
    steps = []
    for tick in plan.steps:
        with running(spec, plan.max_jobs) as server:
            config = _latency_config(plan, tick)
            result = run_loadgen("latency", server.port, server.pid, config, None, _timeout(plan))
        steps.append(_step(result, tick, plan))
        _say_step(f"one process, SSE {plan.jobs} x {plan.clients}", steps[-1])
    return {"steps": steps, "capacity": capacity_of(steps, P99_GOAL_MS)}


def _cluster_delivery(plan: ClusterPlan, nodes: Cluster, redis_pid: int) -> JsonDict:
    trio.run(measures.run_probe_job, nodes.api.port)
    steps = []
    for tick in plan.steps:
        config = _latency_config(plan, tick)
        config["other_pids"] = {"worker": nodes.workers[0].pid, "redis": redis_pid}
        result = run_loadgen("latency", nodes.api.port, nodes.api.pid, config, None, _timeout(plan))
        steps.append(_step(result, tick, plan))
        _say_step(f"1 API + 1 worker, SSE {plan.jobs} x {plan.clients}", steps[-1])
    return {"steps": steps, "capacity": capacity_of(steps, P99_GOAL_MS)}


def _cancel(plan: ClusterPlan, nodes: Cluster) -> JsonDict:
    config = {"count": plan.cancels}
    result = run_loadgen("cancel", nodes.api.port, nodes.api.pid, config, None, 60 + plan.cancels)
    lat = result["latency_ms"]
    say(f"cluster: cancel across nodes p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")
    return result


def _dead_worker(plan: ClusterPlan, nodes: Cluster) -> JsonDict:
    runs = []
    for _ in range(plan.kills):
        outcome = trio.run(measures.dead_worker_once, nodes)
        say(
            f"cluster: worker {outcome['victim']} killed: warning after "
            f"{outcome['warning_s']:.2f} s, running again after {outcome['running_again_s']:.2f} s "
            f"(--worker-timeout {plan.worker_timeout:g} s)"
        )
        runs.append(outcome)
        nodes.start("worker")
    return {
        "worker_timeout_s": plan.worker_timeout,
        "runs": runs,
        "median_running_again_s": statistics.median(r["running_again_s"] for r in runs),
    }


def _throughput(plan: ClusterPlan, nodes: Cluster, workers: int) -> JsonDict:
    trio.run(measures.run_probe_job, nodes.api.port)
    result = trio.run(measures.throughput, nodes, plan.throughput_jobs, plan.throughput_ticks)
    say(
        f"cluster: {workers} worker(s): {result['jobs_per_second']:.1f} jobs/s, "
        f"{result['ticks_per_second']:,.0f} ticks/s"
    )
    return result


def run(results: RunResults, plan: ClusterPlan) -> None:
    """Run every measure; add rows and the raw data. A measure that fails is recorded
    (``failed``) and the others still run."""
    data: JsonDict = {"plan": {"jobs": plan.jobs, "clients": plan.clients}, "failed": {}}
    _attempt(data, "single", lambda: _single_delivery(plan))
    try:
        with redis_server() as (url, redis):
            with cluster(url, plan, apis=1, workers=1) as nodes:
                _attempt(data, "cluster", lambda: _cluster_delivery(plan, nodes, redis.pid))
                _attempt(data, "cancel", lambda: _cancel(plan, nodes))
                _attempt(data, "throughput_1", lambda: _throughput(plan, nodes, 1))
            with cluster(url, plan, apis=1, workers=2) as nodes:
                _attempt(data, "throughput_2", lambda: _throughput(plan, nodes, 2))
                _attempt(data, "dead_worker", lambda: _dead_worker(plan, nodes))
    except NodeFailed as exc:
        data["failed"]["nodes"] = str(exc)
        say(f"cluster: failed: {str(exc)[:800]}")
    results.scenarios["cluster"] = data
    add_rows(results, data)


def _attempt(data: JsonDict, name: str, measure: Callable[[], JsonDict]) -> None:
    """Run one measure into ``data[name]``; a failure is recorded, not raised."""
    try:
        data[name] = measure()
    except Exception as exc:  # a failed measure must not lose the others' figures
        data["failed"][name] = f"{type(exc).__name__}: {exc}"
        say(f"cluster: {name} failed: {data['failed'][name][:800]}")
