"""Spawn rate, memory per job and cancel latency of N idle jobs, beside N bare trio tasks.

Every point (kind × N × traced or not) runs in its own process
(:mod:`bench.inproc.spawn_worker`) so that RSS deltas are not blurred by
memory freed by an earlier point.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench.progress import ROOT, say
from bench.results import Measure, RunResults
from bench.stats import summarize

KINDS = ("aura", "trio")


def _point(kind: str, n: int, cancels: int, traced: bool, timeout: float) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.inproc.spawn_worker", "--kind", kind, "--n", str(n)]
    command += ["--cancels", str(cancels)]
    if traced:
        command.append("--tracemalloc")
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"spawn worker failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run(results: RunResults, sizes: list[int], cancels: int, traced_sizes: list[int]) -> None:
    """Measure every size for the runtime and the bare-trio limit; add rows and raw curves."""
    curve: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for n in sizes:
        points: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            say(f"spawn: {kind} N={n:,} (RSS, spawn rate, {cancels} cancels, shutdown)")
            point = _point(kind, n, cancels, traced=False, timeout=300)
            if n in traced_sizes:
                say(f"spawn: {kind} N={n:,} (tracemalloc)")
                traced = _point(kind, n, 0, traced=True, timeout=300)
                point["traced_bytes"] = traced["traced_bytes"]
            else:
                point["traced_bytes"] = None
            cancel = summarize(point.pop("cancel_seconds"))
            row = {
                "n": n,
                "spawn_per_second": n / point["spawn_seconds"],
                "rss_bytes_per_job": point["rss_bytes"] / n,
                "traced_bytes_per_job": (
                    None if point["traced_bytes"] is None else point["traced_bytes"] / n
                ),
                "cancel_ms": {k: v * 1000 if k != "count" else v for k, v in cancel.items()},
                "shutdown_seconds": point["shutdown_seconds"],
            }
            curve[kind].append(row)
            points[kind] = row
            say(
                f"spawn: {kind} N={n:,}: {row['spawn_per_second']:,.0f} jobs/s, "
                f"{row['rss_bytes_per_job'] / 1024:.1f} KiB RSS/job, "
                f"cancel p99 {row['cancel_ms']['p99']:.3f} ms, "
                f"shutdown {row['shutdown_seconds']:.2f} s"
            )
        _add_rows(results, n, points["aura"], points["trio"])
    results.scenarios["spawn"] = {"sizes": sizes, "cancels_per_size": cancels, "curve": curve}


def _add_rows(results: RunResults, n: int, aura: dict[str, Any], trio: dict[str, Any]) -> None:
    label = "bare trio"
    scenario = f"spawn N={n:,}"
    results.add(
        Measure(
            scenario,
            "spawn rate",
            "jobs/s",
            aura["spawn_per_second"],
            trio["spawn_per_second"],
            label,
            better="higher",
        )
    )
    results.add(
        Measure(
            scenario,
            "RSS per job",
            "KiB",
            aura["rss_bytes_per_job"] / 1024,
            trio["rss_bytes_per_job"] / 1024,
            label,
            target="<= 8 KiB, <= 2x limit",
        )
    )
    if aura["traced_bytes_per_job"] is not None and trio["traced_bytes_per_job"] is not None:
        results.add(
            Measure(
                scenario,
                "tracemalloc per job",
                "KiB",
                aura["traced_bytes_per_job"] / 1024,
                trio["traced_bytes_per_job"] / 1024,
                label,
                target="<= 8 KiB, <= 2x limit",
            )
        )
    results.add(
        Measure(
            scenario,
            "cancel p99 (idle job)",
            "ms",
            aura["cancel_ms"]["p99"],
            trio["cancel_ms"]["p99"],
            label,
            target="<= 5 ms",
        )
    )
    results.add(
        Measure(
            scenario, "shutdown all", "s", aura["shutdown_seconds"], trio["shutdown_seconds"], label
        )
    )
