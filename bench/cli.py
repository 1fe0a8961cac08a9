"""``python -m bench``: run the scenarios, print progress and the final table, save the results."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import machine
from bench.plan import SCENARIOS, Plan, make_plan
from bench.progress import elapsed, say
from bench.results import RunResults
from bench.table import render_text

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark aura-actors beside bare trio, raw channels and a FastAPI peer.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes; about 2 minutes (CI)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument(
        "--only",
        metavar="SCENARIO[,..]",
        help=f"run only these scenarios, of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--servers",
        default="aura,peer",
        help="HTTP servers to run, of: aura, peer (default: both; aura is skipped "
        "while `aura-actors serve` does not exist)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and load to cores")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--no-plots", action="store_true", help="skip the matplotlib plots")
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="also regenerate this Markdown file (e.g. docs/benchmarks.md) from the results",
    )
    return parser


def _selected(only: str | None) -> list[str]:
    if not only:
        return list(SCENARIOS)
    chosen = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    return chosen


def _steps(plan: Plan, args: argparse.Namespace) -> dict[str, Callable[[RunResults], None]]:
    from dataclasses import replace

    from bench.abuse import scenario as abuse
    from bench.cluster import scenario as cluster
    from bench.http import capacity
    from bench.http import scenarios as http
    from bench.inproc import broadcast, cancel, durability, fanout, spawn, startup, video

    servers = tuple(s.strip() for s in args.servers.split(",") if s.strip())
    http_plan = replace(plan.http, servers=servers, pin=not args.no_pin)
    return {
        "spawn": lambda r: spawn.run(
            r, list(plan.spawn_sizes), plan.spawn_cancels, list(plan.spawn_traced_sizes)
        ),
        "fanout": lambda r: fanout.run(r, list(plan.fanout_subscribers), plan.fanout_deliveries),
        "broadcaster": lambda r: broadcast.run(
            r, list(plan.broadcaster_subscribers), plan.broadcaster_deliveries
        ),
        "durability": lambda r: durability.run(r, plan.durability_jobs, plan.durability_delivery),
        "cancel": lambda r: cancel.run(r, plan.cancel_counts),
        "video": lambda r: video.run(r, plan.video_renders),
        "startup": lambda r: startup.run(r, plan.startup_repeats),
        "http": lambda r: http.run(r, http_plan),
        "capacity": lambda r: capacity.run(
            r, replace(plan.capacity, servers=servers, pin=not args.no_pin)
        ),
        "abuse": lambda r: abuse.run(r, replace(plan.abuse, pin=not args.no_pin)),
        "cluster": lambda r: cluster.run(r, plan.cluster),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the harness; return the process exit code."""
    args = _parser().parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    plan = make_plan(mode)
    chosen = _selected(args.only)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    results = RunResults(
        meta={
            "timestamp": stamp,
            "mode": mode,
            "scenarios": chosen,
            "command": command.strip(),
            "machine": machine.describe(),
        }
    )
    say(f"bench: {mode} run of {', '.join(chosen)}")
    steps = _steps(plan, args)
    durations = {}
    for name in chosen:
        started = time.monotonic()
        steps[name](results)
        durations[name] = round(time.monotonic() - started, 2)
    results.meta["durations_seconds"] = durations
    results.meta["total_seconds"] = round(elapsed(), 2)
    path = results.save(args.results_dir, stamp)
    say(f"results saved to {path}")
    if not args.no_plots:
        from bench.plots import draw_all

        for png in draw_all(results.to_json(), args.results_dir / "plots"):
            say(f"plot: {png}")
    if args.docs is not None:
        from bench.docs import write_docs

        say(f"docs: {write_docs(results.to_json(), args.docs, args.results_dir / 'plots')}")
    print(render_text(results.measures))
    print(f"\n{len(results.measures)} measures in {elapsed():.1f} s; results in {path}")
    return 0
