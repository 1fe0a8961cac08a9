"""Writes ``docs/benchmarks.md`` from results files: machine, command, table, plots, notes.

``python -m bench.docs [--results FILE]... [--out docs/benchmarks.md]`` copies the
plots next to the page (``<out dir>/benchmarks/*.png``). With several
``--results`` (e.g. a capacity run and a later abuse run), the page shows them
all: their measures one after the other, each scenario's section from the last
file that ran it, and each run's command.
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path
from typing import Any

from bench.abuse.report import render_abuse
from bench.plots import draw_all
from bench.results import load, measure_from_json
from bench.table import render_markdown

JsonDict = dict[str, Any]
ROOT = Path(__file__).resolve().parent.parent

NOTES = """\
## How it is measured

- **Spawn and memory.** Each point (kind × N) runs in a fresh process. `aura` submits
  N jobs of a one-stage pipeline whose stage awaits `trio.sleep_forever()`
  (`RuntimeConfig(max_concurrent_jobs=N)`); the limit starts N bare trio tasks each
  holding a cancel scope and a nursery with one child task. The spawn rate runs from
  the first submit until every stage is inside its wait. Memory per job is the RSS
  delta (`/proc/self/statm`, after `gc.collect()`) over N and, in a second process,
  the `tracemalloc` delta over N. The same process then cancels a sample of the idle
  jobs one at a time (runtime: `cancel()` → the subscriber receives `job-cancelled`;
  limit: `scope.cancel()` → the task's exit is seen) and times the shutdown of all.
- **Fan-out.** One publisher hands `step-status` events (never coalesced) to S
  subscribers in batches of 256 and waits for every reader to drain the batch;
  `Hub.publish` (the live half of delivery) + `Subscription.receive_batch` on one side,
  `send_nowait` to S memory channels (1024 deep, like the subscriber buffers) +
  `receive`/`receive_nowait` on the other.
- **Broadcaster hop.** The same protocol end to end: a job object emits `step-status`
  events into the broadcaster actor's inbox, which stamps ids, commits them to a
  `MemoryStorage` and only then fans them out to S subscriptions. `burst` sends a batch
  without yielding; `paced` yields after every event, as a job actor does between
  reports. The reference is the old synchronous path done by the sender itself (id,
  `JobHistory.append`, `Hub.publish`). CPU per event is `time.process_time()` over the
  timed part divided by the events sent.
- **Cancel latency (in process).** One job at a time: wait until the stage is inside
  its wait (+2 ms so the subprocess exists and the thread loops), then time
  `runtime.cancel()` → `job-cancelled` received by a subscriber. The limit is the same
  wait in a bare trio task cancelled through its scope. The first 3 of each kind are
  not counted on either side.
- **Video render.** The real `video` pipeline (espeak-ng speech, Pillow slides, ffmpeg
  segments and the final H.264 + AAC mux), one job at a time in a fresh runtime, timed
  from `submit` to the subscriber receiving `job-completed`; stage times from the
  `step-status` events. `speed` 1000 all but removes the pacing (the real work alone);
  `speed` 1 adds the default pacing of 0.25 s per scene in each of the first four stages.
  The reference is the video's length (ratio < 1: faster than real time).
- **HTTP.** Each server runs in its own process, pinned to one core; the load runs in
  another process pinned to the other core (raw trio sockets, a minimal HTTP/1.1 +
  SSE parser that splits frames but does not decode the JSON). Delivery latency is the
  client's `time.time()` in ms when it parses an event minus the `unixMillis` part of
  the event id, which the server stamps when the stage's report is turned into an
  event: both processes read the same wall clock, and the id's millisecond resolution
  adds up to 1 ms. Only events parsed inside the measuring window count (replayed
  history is excluded). Server CPU and RSS come from `/proc/<pid>`. The idle-connection
  RSS is measured on a fresh server process. Cancel over HTTP: `POST .../cancel` →
  `job-cancelled` parsed on the job's stream, one job at a time.
- **What aura-actors does per event that the peer does not.** The server stores
  every event in SQLite (WAL, `synchronous=NORMAL`, one writer thread, a batch per
  commit) before any subscriber sees it, so every delivered event, and every
  `job-cancelled`, was committed first: the broadcaster actor stamps the id, commits
  the batch in a worker thread, then fans it out. The peer keeps nothing (events
  live in its per-subscriber queues only). Its CPU per event includes that commit.
- **Capacity.** For SSE and WebSocket the offered load rises step by step: a fixed
  number of synthetic jobs ticking every 0.1 s, and more clients at each step
  (client *i* follows job *i* mod jobs), so the offered load is clients / 0.1 s
  events/s. Both servers are started once, pinned to the same core, and measured
  one after the other at each step (the order alternates between steps), each with
  3 measuring windows on one set of connections: median and min–max of the
  windows' p99, delivered events/s and server CPU. The capacity is the highest
  median delivered events/s among the steps with median p99 ≤ 50 ms; the server
  runs on one core, so it is per core (a lower bound when the highest step still
  passes). The offered load is nominal: a loaded server stretches its jobs' ticks.
  CPU per delivered event is the
  server's CPU time (`/proc`, 10 ms ticks) over all the step's windows divided by
  the events delivered. The calibration row times a fixed pure-Python loop of
  10⁶ steps on the server's core before and after the scenario: a slower machine
  or a busier day shows there, so runs of different days can be compared
  (ratios between the two servers need no calibration: they share the run).
- **SSE vs WebSocket.** Rows named `http latency SSE ...` follow `GET .../events`;
  rows named `http latency WebSocket ...` run the same scenario over
  `GET /api/jobs/{id}/ws` (one text frame `{"id","event","data"}` per event, the same
  ids): a minimal client on raw trio sockets + wsproto (`bench/http/ws.py`, no task or
  queue per connection; it answers pings) reads the id from each frame's head without
  decoding the JSON, and the latency is computed exactly as for SSE.
- **The peer** (`bench/peers/fastapi_peer.py`): FastAPI + sse-starlette on uvicorn
  (`uvicorn[standard]`: uvloop, httptools), one asyncio task per job, an
  `asyncio.Queue(1024)` per subscriber (a subscriber that falls further behind is
  dropped), cancel by `task.cancel()`, each event JSON-encoded once. Its WebSocket
  endpoint is a Starlette `WebSocket` with the same per-subscriber queue, a sender and
  a receiver task (the receiver handles `{"action": "cancel"}` and disconnects).
- The machine is shared and has 2 cores, so absolute numbers are noisy: compare the
  ratios, which come from measurements made in the same run.
"""


def _machine(meta: JsonDict) -> str:
    machine = meta.get("machine", {})
    memory = machine.get("memory_gib")
    memory_text = "?" if memory is None else f"{memory:.1f} GiB"
    packages = ", ".join(f"{k} {v}" for k, v in machine.get("packages", {}).items() if v)
    load = machine.get("load_average") or []
    load_text = ", ".join(f"{x:.2f}" for x in load)
    return (
        f"- CPU: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores "
        f"({machine.get('usable_cores', '?')} usable)\n"
        f"- Memory: {memory_text}; kernel {machine.get('kernel', '?')}; "
        f"Python {machine.get('python', '?')}\n"
        f"- Packages: {packages}\n"
        f"- Load average at start: {load_text}\n"
    )


def _skipped(data: JsonDict) -> str:
    skipped = data.get("scenarios", {}).get("http", {}).get("skipped", {})
    if not skipped:
        return ""
    lines = "\n".join(f"- `{name}`: {reason.splitlines()[0]}" for name, reason in skipped.items())
    return f"\n**Not run in this invocation:**\n\n{lines}\n"


def _targets(data: JsonDict) -> str:
    rows = [measure_from_json(row) for row in data.get("measures", []) if row.get("target")]
    if not rows:
        return ""
    lines = []
    for m in rows:
        value = "not measured" if math.isnan(m.value) else f"{m.value:.3g} {m.unit}"
        ratio = m.ratio
        ratio_text = (
            "" if ratio is None or math.isnan(ratio) else f" ({ratio:.2f}x {m.reference_label})"
        )
        lines.append(f"- {m.scenario}, {m.name}: target {m.target}; measured {value}{ratio_text}")
    return "## Targets\n\n" + "\n".join(lines) + "\n\n"


def _spread(summary: JsonDict, digits: int = 0) -> str:
    return (
        f"{summary['median']:,.{digits}f} [{summary['min']:,.{digits}f}–"
        f"{summary['max']:,.{digits}f}]"
    )


def _capacity(data: JsonDict) -> str:
    """The capacity curves as tables: one row per step and server, median [min–max]."""
    capacity = data.get("scenarios", {}).get("capacity")
    if not capacity:
        return ""
    calib = capacity.get("calibration_ms", {})
    lines = [
        "## Capacity (per server core)\n",
        f"CPU calibration (10⁶-step pure-Python loop on the server's core): "
        f"{calib.get('before', math.nan):.1f} ms before, {calib.get('after', math.nan):.1f} ms "
        f"after the scenario. Median [min–max] of {capacity['plan']['repeats']} windows of "
        f"{capacity['plan']['window']:g} s; {capacity['plan']['jobs']} jobs ticking every "
        f"{capacity['plan']['tick_seconds']:g} s.\n",
    ]
    labels = {"sse": "SSE", "ws": "WebSocket"}
    names = {"aura": "aura-actors", "peer": "peer"}
    for transport, curves in capacity.get("curves", {}).items():
        best = capacity.get("capacity", {}).get(transport, {})
        lines.append(f"\n**{labels.get(transport, transport)}**\n")
        lines.append(
            "| server | offered events/s | delivered events/s | p99 ms | CPU µs/event | "
            "server CPU % | capacity point |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        for name, points in sorted(curves.items()):
            chosen = best.get(name)
            for point in points:
                chosen_here = chosen is not None and chosen.get("clients") == point["clients"]
                mark = "**yes**" if chosen_here else ""
                lines.append(
                    f"| {names.get(name, name)} | {point['offered_per_second']:,.0f} | "
                    f"{_spread(point['delivered_per_second'])} | {_spread(point['p99_ms'], 1)} | "
                    f"{point['cpu_us_per_event_pooled']:.0f} | "
                    f"{_spread(point['server_cpu_percent'])} | {mark} |"
                )
    return "\n".join(lines) + "\n"


#: Hand-written analysis of the latest full run, included as it is.
ANALYSIS = Path(__file__).resolve().parent / "analysis.md"


def _analysis() -> str:
    return "\n" + ANALYSIS.read_text(encoding="utf-8") if ANALYSIS.is_file() else ""


def merge(runs: list[JsonDict]) -> JsonDict:
    """Several results files as one: the first's machine, every run's measures and scenarios.

    ``meta.sources`` lists each run (timestamp, command, mode, seconds, scenarios).
    """
    if len(runs) == 1:
        return runs[0]
    sources = [
        {key: run.get("meta", {}).get(key) for key in ("timestamp", "command", "mode")}
        | {
            "total_seconds": run.get("meta", {}).get("total_seconds"),
            "scenarios": run.get("meta", {}).get("scenarios", []),
        }
        for run in runs
    ]
    meta = dict(runs[0].get("meta", {}))
    meta["sources"] = sources
    meta["scenarios"] = [name for source in sources for name in source["scenarios"]]
    scenarios: JsonDict = {}
    for run in runs:
        scenarios.update(run.get("scenarios", {}))
    measures = [row for run in runs for row in run.get("measures", [])]
    return {"meta": meta, "measures": measures, "scenarios": scenarios}


def _command(meta: JsonDict) -> str:
    """The run's command without ``--results-dir DIR`` (where it saved is no part of it)."""
    words = str(meta.get("command", "python -m bench")).split()
    if "--results-dir" in words:
        at = words.index("--results-dir")
        del words[at : at + 2]
    return " ".join(words)


def _provenance(meta: JsonDict) -> str:
    sources = meta.get("sources")
    if not sources:
        return (
            "Generated by `python -m bench.docs` from "
            f"`bench/results/{meta.get('timestamp', 'latest')}.json`; do not edit by hand.\n\n"
            f"Reproduce with:\n\n    {_command(meta)}\n\n"
            f"Mode `{meta.get('mode', '?')}`, {meta.get('total_seconds', '?')} s, "
            f"scenarios {', '.join(meta.get('scenarios', []))}.\n\n"
        )
    files = ", ".join(f"`bench/results/{source['timestamp']}.json`" for source in sources)
    runs = "\n".join(
        f"- `{_command(source)}`: mode `{source['mode']}`, {source['total_seconds']} s, "
        f"scenarios {', '.join(source['scenarios'])}"
        for source in sources
    )
    return (
        f"Generated by `python -m bench.docs` from {files}; do not edit by hand.\n\n"
        f"Runs (reproduce with each command):\n\n{runs}\n\n"
        "The machine below is the first run's.\n\n"
    )


def render(data: JsonDict, plot_dir: str) -> str:
    """The Markdown page for one results file, with plots under ``plot_dir`` (relative)."""
    meta = data.get("meta", {})
    measures = [measure_from_json(row) for row in data.get("measures", [])]
    scenarios = data.get("scenarios", {})
    plots = "\n\n".join(
        f"![{title}]({plot_dir}/{name})"
        for name, title, scenario in (
            ("latency_cdf.png", "Delivery latency CDF (SSE, WebSocket)", "http"),
            ("memory_per_job.png", "Memory per job vs job count", "spawn"),
            ("fanout.png", "Delivered events/s vs subscribers", "fanout"),
            ("capacity.png", "Capacity: delivered events/s and p99 vs offered load", "capacity"),
        )
        if scenario in scenarios  # only this run's plots
    )
    return (
        "# Benchmarks\n\n"
        + _provenance(meta)
        + "## Machine\n\n"
        + _machine(meta)
        + _skipped(data)
        + "\n## Results\n\n"
        "Ratio = value / (limit or peer) measured in the same run.\n\n"
        + render_markdown(measures)
        + "\n\n"
        + _targets(data)
        + _capacity(data)
        + render_abuse(data)
        + _analysis()
        + "\n## Plots\n\n"
        + plots
        + "\n\n"
        + NOTES
    )


def write_docs(data: JsonDict, out: Path, plots_from: Path | None = None) -> Path:
    """Write the page to ``out`` and its plots to ``<out dir>/benchmarks/``."""
    plot_dir = out.parent / "benchmarks"
    plot_dir.mkdir(parents=True, exist_ok=True)
    if plots_from is not None and plots_from.is_dir():
        for png in plots_from.glob("*.png"):
            shutil.copy2(png, plot_dir / png.name)
    else:
        draw_all(data, plot_dir)
    out.write_text(render(data, "benchmarks"))
    return out


def main(argv: list[str] | None = None) -> int:
    """Regenerate the page from a results file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--results",
        type=Path,
        action="append",
        help="a results file (repeatable; default bench/results/latest.json)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    paths = args.results or [ROOT / "bench" / "results" / "latest.json"]
    print(write_docs(merge([load(path) for path in paths]), args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
