"""The capacity scenario's arithmetic and plot, on made-up points (no servers, no timings)."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bench.http.capacity import capacity_of, point_of  # noqa: E402
from bench.plots import draw_all  # noqa: E402


def _window(events_per_second: float, p99: float, cpu_us: float) -> dict[str, object]:
    return {
        "events": int(events_per_second),
        "events_per_second": events_per_second,
        "latency_ms": {"p50": p99 / 2, "p99": p99},
        "server_cpu_us_per_event": cpu_us,
        "server_cpu_percent": events_per_second * cpu_us / 1e4,
    }


def _result(clients: int, windows: list[dict[str, object]]) -> dict[str, object]:
    return {"clients": clients, "jobs": 10, "connected": clients, "failed": 0, "windows": windows}


def test_capacity_is_the_best_step_within_the_bound() -> None:
    low = point_of(_result(100, [_window(1000, 10, 50)] * 3), 1000)
    mid = point_of(
        _result(300, [_window(2990, 40, 40), _window(3000, 60, 40), _window(2980, 45, 40)]), 3000
    )
    slow = point_of(_result(600, [_window(6000, 80, 30)] * 3), 6000)
    best = capacity_of([low, mid, slow])
    assert best is mid
    assert mid["p99_ms"] == {"median": 45, "min": 40, "max": 60, "runs": [40, 60, 45]}
    assert mid["cpu_us_per_event_pooled"] == 40
    assert capacity_of([slow]) is None


def test_capacity_plot_is_drawn(tmp_path: Path) -> None:
    points = [point_of(_result(c, [_window(c * 10, c / 10, 50)] * 3), c * 10) for c in (100, 300)]
    data = {
        "scenarios": {
            "capacity": {
                "p99_bound_ms": 50.0,
                "curves": {"sse": {"aura": points, "peer": points}, "ws": {"aura": points}},
            }
        }
    }
    (path,) = draw_all(data, tmp_path)
    assert path.name == "capacity.png" and path.stat().st_size > 0
