"""Small statistics helpers: percentiles and summaries of samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0–100) of ``samples`` by the nearest-rank method; NaN if empty."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """``count``, ``p50``, ``p90``, ``p99``, ``max`` and ``mean`` of ``samples``."""
    if not samples:
        nan = math.nan
        return {"count": 0, "p50": nan, "p90": nan, "p99": nan, "max": nan, "mean": nan}
    ordered = sorted(samples)
    return {
        "count": float(len(ordered)),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


def cdf_points(samples: Sequence[float], points: int = 200) -> list[tuple[float, float]]:
    """Up to ``points`` (value, cumulative fraction) pairs describing the samples' CDF."""
    if not samples:
        return []
    ordered = sorted(samples)
    n = len(ordered)
    step = max(1, n // points)
    pairs = [(ordered[i], (i + 1) / n) for i in range(0, n, step)]
    if pairs[-1][1] < 1.0:
        pairs.append((ordered[-1], 1.0))
    return pairs
