"""The HTTP scenarios: each server under test in turn, load from a separate process.

For every server (aura-actors when its ``serve`` command exists, and the
peer) this starts the server pinned to one core, then runs
:mod:`bench.http.loadgen` pinned to the other for each scenario, and turns the
figures into table rows: aura-actors' value beside the peer's.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from bench.http.server import PEER, ServerFailed, ServerSpec, aura_spec, running
from bench.progress import ROOT, say
from bench.results import Measure, RunResults

JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class LatencyRun:
    """One delivery-latency run: jobs, clients, the silent fraction, window and tick.

    ``transport`` is ``"sse"`` (``GET .../events``) or ``"ws"`` (``GET .../ws``).
    """

    jobs: int
    clients: int
    silent: float = 0.0
    window: float = 5.0
    tick_seconds: float = 0.1
    warmup: float = 1.0
    transport: str = "sse"

    @property
    def transport_label(self) -> str:
        """``SSE`` or ``WebSocket``."""
        return "WebSocket" if self.transport == "ws" else "SSE"

    @property
    def key(self) -> str:
        """A short name, e.g. ``SSE J=100 C=1000 silent=10%`` or ``WebSocket J=100 C=1000``."""
        text = f"{self.transport_label} J={self.jobs} C={self.clients}"
        return text + (f" silent={self.silent:.0%}" if self.silent else "")


@dataclass(frozen=True, slots=True)
class HttpPlan:
    """Everything the HTTP part runs."""

    latency: tuple[LatencyRun, ...]
    idle_steps: tuple[int, ...]
    cancels: int
    servers: tuple[str, ...] = ("aura", "peer")
    pin: bool = True
    max_jobs: int = field(default=0)


def run_loadgen(
    scenario: str, port: int, pid: int, config: JsonDict, cpu: int | None, timeout: float
) -> JsonDict:
    """Run :mod:`bench.http.loadgen` ``scenario`` against the server on ``port`` (process
    ``pid``), pinned to ``cpu`` if given; return its JSON result."""
    command = [sys.executable, "-m", "bench.http.loadgen", scenario, "--port", str(port)]
    command += ["--server-pid", str(pid), "--config", json.dumps(config)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=None, text=True, cwd=ROOT)
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(process.pid, {cpu})
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"loadgen {scenario} exited {process.returncode}")
    result: JsonDict = json.loads(out)
    return result


def _cpus(pin: bool) -> tuple[int | None, int | None]:
    available = sorted(os.sched_getaffinity(0))
    if not pin or len(available) < 2:
        return None, None
    return available[0], available[1]


def _run_server(spec: ServerSpec, plan: HttpPlan) -> JsonDict:
    server_cpu, load_cpu = _cpus(plan.pin)
    max_jobs = plan.max_jobs or max([run.jobs for run in plan.latency] + [16])
    out: JsonDict = {"latency": {}, "idle": None, "cancel": None}
    if plan.idle_steps:
        # A fresh server, so the RSS growth is not hidden by memory freed by other runs.
        with running(spec, max_jobs, cpu=server_cpu) as server:
            say(f"http/{spec.name}: idle connections {list(plan.idle_steps)} (pid {server.pid})")
            config: JsonDict = {"steps": list(plan.idle_steps)}
            timeout = 120 + max(plan.idle_steps) / 20
            out["idle"] = run_loadgen("idle", server.port, server.pid, config, load_cpu, timeout)
    with running(spec, max_jobs, cpu=server_cpu) as server:
        say(f"http/{spec.name}: listening on port {server.port} (pid {server.pid})")
        for run in plan.latency:
            say(f"http/{spec.name}: delivery latency {run.key}, {run.window:g} s window")
            config = {
                "jobs": run.jobs,
                "clients": run.clients,
                "silent": run.silent,
                "window": run.window,
                "tick_seconds": run.tick_seconds,
                "warmup": run.warmup,
                "transport": run.transport,
            }
            timeout = 120 + run.window + run.clients / 20
            result = run_loadgen("latency", server.port, server.pid, config, load_cpu, timeout)
            lat = result["latency_ms"]
            say(
                f"http/{spec.name}: {run.key}: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
                f"{result['events_per_second']:,.0f} events/s, server CPU "
                f"{result['server_cpu_percent']:.0f}%, load CPU {result['load_cpu_percent']:.0f}%"
            )
            out["latency"][run.key] = result
        if plan.cancels:
            say(f"http/{spec.name}: {plan.cancels} cancels over HTTP")
            config = {"count": plan.cancels}
            timeout = 60 + plan.cancels
            out["cancel"] = run_loadgen(
                "cancel", server.port, server.pid, config, load_cpu, timeout
            )
            lat = out["cancel"]["latency_ms"]
            say(f"http/{spec.name}: cancel p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")
    return out


def run(results: RunResults, plan: HttpPlan) -> None:
    """Run every scenario against every available server; add rows and raw data."""
    specs: dict[str, ServerSpec] = {"peer": PEER}
    aura = aura_spec()
    data: JsonDict = {"servers": {}, "skipped": {}, "pinned": plan.pin}
    if aura is not None:
        specs["aura"] = aura
    for name in plan.servers:
        spec = specs.get(name)
        if spec is None:
            data["skipped"][name] = "aura-actors serve is not available yet (no aura_actors.cli)"
            say(f"http/{name}: skipped: {data['skipped'][name]}")
            continue
        try:
            data["servers"][name] = _run_server(spec, plan)
        except (ServerFailed, RuntimeError, subprocess.TimeoutExpired) as exc:
            data["skipped"][name] = f"{type(exc).__name__}: {exc}"
            say(f"http/{name}: failed: {data['skipped'][name][:500]}")
    results.scenarios["http"] = data
    _add_rows(results, plan, data["servers"])


def _get(server: JsonDict | None, *path: str | int) -> float:
    value: Any = server
    for key in path:
        if value is None:
            return math.nan
        value = value[key]
    return math.nan if value is None else float(value)


def _add_rows(results: RunResults, plan: HttpPlan, servers: JsonDict) -> None:
    aura, peer = servers.get("aura"), servers.get("peer")

    def row(scenario: str, name: str, unit: str, path: tuple[str | int, ...], **kw: Any) -> None:
        results.add(
            Measure(scenario, name, unit, _get(aura, *path), _get(peer, *path), "peer", **kw)
        )

    for run in plan.latency:
        scenario = f"http latency {run.key}"
        base = ("latency", run.key)
        target = "<= 20 ms, <= 0.5x peer" if run.clients >= 1000 else ""
        row(scenario, "delivery p50", "ms", (*base, "latency_ms", "p50"))
        row(scenario, "delivery p99", "ms", (*base, "latency_ms", "p99"), target=target)
        row(scenario, "delivery max", "ms", (*base, "latency_ms", "max"))
        row(
            scenario,
            "delivered events/s",
            "events/s",
            (*base, "events_per_second"),
            better="higher",
        )
        row(scenario, "server CPU", "% of a core", (*base, "server_cpu_percent"))
        rss = ("latency", run.key, "server_rss_bytes")
        results.add(
            Measure(
                scenario,
                "server RSS",
                "MiB",
                _get(aura, *rss) / 2**20,
                _get(peer, *rss) / 2**20,
                "peer",
            )
        )
        if run.silent:
            plain = next(
                (
                    r
                    for r in plan.latency
                    if (r.jobs, r.clients, r.transport) == (run.jobs, run.clients, run.transport)
                    and not r.silent
                ),
                None,
            )
            if plain is not None:
                for name, server in (("aura", aura), ("peer", peer)):
                    path = ("latency", run.key, "latency_ms", "p99")
                    results.add(
                        Measure(
                            scenario,
                            f"{name}: readers' p99 with silent clients",
                            "ms",
                            _get(server, *path),
                            _get(server, "latency", plain.key, "latency_ms", "p99"),
                            f"{name} without",
                            target="close to 1x",
                        )
                    )
    for step_index, step in enumerate(plan.idle_steps):
        idle_path = ("idle", "points", step_index, "rss_bytes_per_connection")
        results.add(
            Measure(
                f"http idle {step} SSE",
                "RSS per open connection",
                "KiB",
                _get(aura, *idle_path) / 1024,
                _get(peer, *idle_path) / 1024,
                "peer",
                target="<= 30 KiB",
            )
        )
    if plan.cancels:
        for stat in ("p50", "p99", "max"):
            row(
                f"http cancel x{plan.cancels}",
                f"cancel {stat}",
                "ms",
                ("cancel", "latency_ms", stat),
            )
