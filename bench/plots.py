"""The PNG plots of a run (matplotlib, Agg backend).

- ``latency_cdf.png``: delivery latency CDF, aura-actors vs the peer, one panel per
  transport (SSE, and WebSocket when the run has WebSocket rows);
- ``memory_per_job.png``: memory per idle job vs job count, with the bare-trio limit;
- ``fanout.png``: delivered events/s vs subscribers, with raw memory-channel fan-out;
- ``capacity.png``: delivered events/s and p99 vs offered load, aura-actors and the
  peer, one column per transport (median of the repeats, min-max as error bars).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

JsonDict = dict[str, Any]


_TRANSPORT_LABELS = {"sse": "SSE", "ws": "WebSocket"}


def _latency_cdf(data: JsonDict, out: Path) -> Path | None:
    servers = data.get("scenarios", {}).get("http", {}).get("servers", {})
    if not servers:
        return None
    # One panel per transport; runs saved before the transport option are SSE.
    transports = sorted(
        {
            run.get("transport", "sse")
            for s in servers.values()
            for run in s.get("latency", {}).values()
        }
        or {"sse"},
        key=lambda t: (t != "sse", t),
    )
    fig, axes = plt.subplots(
        1, len(transports), figsize=(7 * len(transports), 4.5), sharey=True, squeeze=False
    )
    styles = {"aura": "-", "peer": "--"}
    for ax, transport in zip(axes[0], transports, strict=True):
        label_of = _TRANSPORT_LABELS.get(transport, transport)
        for name, server in sorted(servers.items()):
            for key, run in server.get("latency", {}).items():
                points = run.get("latency_cdf") or []
                if not points or run.get("transport", "sse") != transport:
                    continue
                xs = [max(p[0], 0.01) for p in points]
                ys = [p[1] for p in points]
                shown = key if key.startswith(label_of) else f"{label_of} {key}"
                label = f"{'aura-actors' if name == 'aura' else 'peer (FastAPI)'} {shown}"
                ax.plot(xs, ys, styles.get(name, "-"), label=label)
        ax.set_xscale("log")
        ax.set_xlabel("delivery latency, report → client parse (ms, log)")
        ax.set_title(f"{label_of} delivery latency CDF")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("fraction of events")
    path = out / "latency_cdf.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _memory_per_job(data: JsonDict, out: Path) -> Path | None:
    curve = data.get("scenarios", {}).get("spawn", {}).get("curve")
    if not curve:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = {"aura": "aura-actors job", "trio": "bare trio task (limit)"}
    for kind, rows in curve.items():
        ns = [row["n"] for row in rows]
        ax.plot(
            ns, [row["rss_bytes_per_job"] / 1024 for row in rows], "o-", label=f"{names[kind]}, RSS"
        )
        traced = [
            (row["n"], row["traced_bytes_per_job"])
            for row in rows
            if row["traced_bytes_per_job"] is not None
        ]
        if traced:
            ax.plot(
                [t[0] for t in traced],
                [t[1] / 1024 for t in traced],
                "s--",
                label=f"{names[kind]}, tracemalloc",
            )
    ax.axhline(8, color="grey", linestyle=":", label="target 8 KiB")
    ax.set_xscale("log")
    ax.set_xlabel("concurrent idle jobs (log)")
    ax.set_ylabel("KiB per job")
    ax.set_title("Memory per idle job vs job count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path = out / "memory_per_job.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fanout(data: JsonDict, out: Path) -> Path | None:
    curve = data.get("scenarios", {}).get("fanout", {}).get("curve")
    if not curve:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = {"aura": "Hub.publish", "raw": "raw memory channels (limit)"}
    for side, rows in curve.items():
        ax.plot(
            [r["subscribers"] for r in rows],
            [r["delivered_per_second"] for r in rows],
            "o-",
            label=names[side],
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("subscribers (log)")
    ax.set_ylabel("delivered events/s (log)")
    ax.set_title("Fan-out throughput")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path = out / "fanout.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _errorbar(ax: Any, points: list[JsonDict], key: str, style: str, label: str) -> None:
    xs = [p["offered_per_second"] for p in points]
    mid = [p[key]["median"] for p in points]
    low = [max(m - p[key]["min"], 0) for m, p in zip(mid, points, strict=True)]
    high = [max(p[key]["max"] - m, 0) for m, p in zip(mid, points, strict=True)]
    ax.errorbar(xs, mid, yerr=[low, high], fmt=style, capsize=3, label=label)


def _capacity(data: JsonDict, out: Path) -> Path | None:
    capacity = data.get("scenarios", {}).get("capacity", {})
    curves = capacity.get("curves", {})
    if not any(points for per in curves.values() for points in per.values()):
        return None
    transports = sorted(curves, key=lambda t: (t != "sse", t))
    fig, axes = plt.subplots(
        2, len(transports), figsize=(7 * len(transports), 8), squeeze=False, sharex="col"
    )
    names = {"aura": ("aura-actors", "o-"), "peer": ("peer (FastAPI)", "s--")}
    for column, transport in enumerate(transports):
        label_of = _TRANSPORT_LABELS.get(transport, transport)
        top, bottom = axes[0][column], axes[1][column]
        offered: set[float] = set()
        for name, points in sorted(curves[transport].items()):
            if not points:
                continue
            shown, style = names.get(name, (name, "o-"))
            offered.update(p["offered_per_second"] for p in points)
            _errorbar(top, points, "delivered_per_second", style, shown)
            _errorbar(bottom, points, "p99_ms", style, shown)
        if offered:
            line = sorted(offered)
            top.plot(line, line, ":", color="grey", label="offered")
        bound = capacity.get("p99_bound_ms", 50.0)
        bottom.axhline(bound, color="grey", linestyle=":", label=f"p99 bound {bound:g} ms")
        top.set_title(f"{label_of}: delivered events/s vs offered load (server on 1 core)")
        top.set_ylabel("delivered events/s")
        bottom.set_title(f"{label_of}: delivery p99 vs offered load")
        bottom.set_ylabel("p99 (ms, log)")
        bottom.set_yscale("log")
        bottom.set_xlabel("offered events/s (clients / tick)")
        for ax in (top, bottom):
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    path = out / "capacity.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_all(data: JsonDict, out: Path) -> list[Path]:
    """Draw every plot the results have data for into ``out``; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    drawn = [draw(data, out) for draw in (_latency_cdf, _memory_per_job, _fanout, _capacity)]
    return [path for path in drawn if path is not None]
