"""The ``abuse`` section of docs/benchmarks.md, from a results file's ``scenarios.abuse``."""

from __future__ import annotations

import math
from typing import Any

from bench.abuse.plan import GOAL_RATIO, QUIET

JsonDict = dict[str, Any]

WHAT = {
    "quiet": "no abuse (the baseline)",
    "slow-readers": "{slow_readers} SSE clients of `/api/events` that never read "
    "({slow_reader_rcvbuf} B receive buffer)",
    "slowloris": "{slowloris:,} sockets trickling a request head, 1 byte per "
    "{slowloris_interval:g} s each, replaced when cut",
    "ws-big-frames": "{ws_clients} WebSocket clients sending {frame_kib:,} KiB frames "
    "(cap 64 KiB), reconnecting",
    "replay-storm": "{replay_clients} clients replaying `/api/events` from `0-0` "
    "({stored_jobs:,} stored jobs), in a loop",
    "head-storm": "{head_workers} loops of `HEAD` on an SSE route + a pipelined `GET`, then close",
    "quiet-after": "no abuse again (a control: the noise between two quiet windows)",
}


def _ms(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.1f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _goal(condition: JsonDict) -> str:
    met = condition.get("goal_met")
    return "" if met is None else "yes" if met else "**no**"


def _fds(condition: JsonDict, quiet_fds: int) -> str:
    settled = condition["fds_settled"]
    mark = "" if condition["back_to_quiet"] else " **leak**"
    return f"{condition['fds_under_abuse']} → {settled} ({quiet_fds}){mark}"


def _errors(condition: JsonDict) -> str:
    errors = condition["probe"]["errors"]
    return ", ".join(f"{n} {what}" for what, n in sorted(errors.items())) or "0"


def _row(name: str, condition: JsonDict, quiet_fds: int) -> str:
    health, first = condition["probe"]["health_ms"], condition["probe"]["first_event_ms"]
    return (
        f"| {name} | {_ms(health['p50'])} | {_ms(health['p99'])} | "
        f"{_ratio(condition['health_p99_ratio'])} | {_ms(first['p50'])} | "
        f"{_ratio(condition['first_event_ratio'])} | {_goal(condition)} | "
        f"{condition['server_cpu_percent']:.0f} | {condition.get('listen_overflows', '-')} | "
        f"{_fds(condition, quiet_fds)} | "
        f"{_errors(condition)} |"
    )


def render_abuse(data: JsonDict) -> str:
    """The section (empty when the results hold no abuse run)."""
    abuse = data.get("scenarios", {}).get("abuse")
    if not abuse:
        return ""
    if "skipped" in abuse:
        return f"## Abuse\n\nNot run: {abuse['skipped']}\n\n"
    plan, conditions = abuse["plan"], abuse["conditions"]
    sizes = {**plan, "frame_kib": plan["ws_frame_bytes"] // 1024}
    meta = data.get("meta", {})
    run = next((s for s in meta.get("sources", []) if "abuse" in s["scenarios"]), meta)
    mode = run.get("mode", "?")
    abuses = [name for name in conditions if name not in QUIET]
    met = [name for name in abuses if conditions[name].get("goal_met")]
    lines = [
        "## Abuse: `/api/health` and a fresh stream's first event under each abuse\n",
        f"Goal (issue 11): under every abuse, health p99 ≤ {GOAL_RATIO:g}× its quiet value. "
        f"Met under {len(met)} of {len(abuses)} abuses in this run (mode `{mode}`, "
        f"`{run.get('timestamp', '?')}`).\n",
        "One server (`aura-actors serve`, its default limits, a fresh data dir) pinned to "
        f"one core, {plan['producers']} jobs ticking every {plan['tick_seconds']:g} s and "
        f"{plan['stored_jobs']:,} finished jobs stored; the abuse runs from a separate "
        "process pinned to the other core, each abuse from a loopback address of its own "
        "(127.0.0.3 to .7), the probes from the harness's own process (unpinned, "
        "127.0.0.1), so the server's per-address defences tell them apart. "
        f"Per condition, after {plan['warmup']:g} s of abuse, a window of "
        f"{plan['window']:g} s: `GET /api/health` "
        f"one at a time on a fresh connection each, {plan['health_interval'] * 1000:g} ms "
        f"apart, and {plan['first_event_samples']} fresh SSE clients of a ticking job's "
        "stream timed from connect to their first event. Then the abuse is stopped and "
        "the server must return to its quiet descriptor count before the next condition "
        "(fds: under abuse → after settling (quiet)). Listen overflows: connections the "
        "kernel dropped because the server's listen queue (`--backlog`) was "
        "full during the window (machine-wide `TcpExt ListenOverflows`, so another "
        "process's could count too); each makes that client retry after a "
        "retransmission timeout.\n",
        "**The machine is shared and noisy**: the ratios are to the `quiet` condition "
        "measured in the same run, minutes apart; `quiet-after` shows how far two quiet "
        "windows differ.\n",
        "| condition | health p50 ms | health p99 ms | p99 / quiet | first event median ms "
        "| / quiet | goal met | server CPU % | listen overflows | fds | probe errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(name, c, abuse["quiet_fds"]) for name, c in conditions.items()]
    lines.append("\nWhat each condition runs:\n")
    lines += [f"- `{name}`: {WHAT.get(name, name).format(**sizes)}" for name in conditions]
    attacker = [
        f"`{name}` " + ", ".join(f"{key} {count:,}" for key, count in c["attacker"].items())
        for name, c in conditions.items()
        if c["attacker"]
    ]
    lines.append("\nWhat the attackers counted: " + "; ".join(attacker) + ".")
    return "\n".join(lines) + "\n\n"
