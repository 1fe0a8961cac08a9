"""Weighted overall progress that never goes back, and an ETA from the observed rate."""

from __future__ import annotations

from collections.abc import Sequence


class ProgressTracker:
    """Maps each stage's own fraction onto its range of the job's 0–100 %.

    Stage ``i`` owns the range ``[start_i, start_i + 100 * w_i / sum(w))``.
    Overall progress is monotonic: whatever a stage reports (backwards, out of
    range, not a number), :attr:`overall_pct` never decreases.
    """

    __slots__ = ("_ranges", "overall_pct", "stage_pct")

    def __init__(self, weights: Sequence[float]) -> None:
        if not weights:
            raise ValueError("a pipeline needs at least one stage")
        if any(not w > 0 for w in weights):
            raise ValueError("stage weights must be positive")
        total = float(sum(weights))
        ranges: list[tuple[float, float]] = []
        start = 0.0
        for weight in weights:
            end = start + 100.0 * weight / total
            ranges.append((start, end))
            start = end
        ranges[-1] = (ranges[-1][0], 100.0)
        self._ranges = tuple(ranges)
        self.overall_pct = 0.0
        self.stage_pct = 0.0

    def stage_range(self, index: int) -> tuple[float, float]:
        """The ``(start, end)`` percentages of stage ``index``."""
        return self._ranges[index]

    def start_stage(self, index: int) -> float:
        """Enter stage ``index``: its stage progress starts at 0. Returns overall %."""
        self.stage_pct = 0.0
        return self._advance(self._ranges[index][0])

    def report(self, index: int, fraction: float) -> float:
        """Record stage ``index`` at ``fraction`` (clamped to 0–1). Returns overall %."""
        if not fraction >= 0.0:  # also catches NaN
            fraction = 0.0
        fraction = min(fraction, 1.0)
        self.stage_pct = max(self.stage_pct, fraction * 100.0)
        start, end = self._ranges[index]
        return self._advance(start + (end - start) * self.stage_pct / 100.0)

    def complete_stage(self, index: int) -> float:
        """Stage ``index`` finished: it is at 100 %. Returns overall %."""
        self.stage_pct = 100.0
        return self._advance(self._ranges[index][1])

    def _advance(self, pct: float) -> float:
        pct = round(min(max(pct, 0.0), 100.0), 2)
        if pct > self.overall_pct:
            self.overall_pct = pct
        return self.overall_pct


class EtaEstimator:
    """Seconds left, from the average rate since the job's progress started moving.

    The rate is measured from the first observation to the latest, so a stage
    that jumps ahead moves the estimate only as much as the jump is worth over
    the whole run, and a stage that stalls makes the estimate grow with the
    stall (the same progress over a longer time) instead of freezing it.
    ``None`` until at least ``min_elapsed`` seconds and some progress have
    been observed.
    """

    __slots__ = ("_start_pct", "_start_time", "min_elapsed")

    def __init__(self, min_elapsed: float = 0.5) -> None:
        self.min_elapsed = min_elapsed
        self._start_time: float | None = None
        self._start_pct = 0.0

    def observe(self, now: float, pct: float) -> float | None:
        """Record overall ``pct`` at trio time ``now``; return the ETA in seconds or ``None``."""
        if self._start_time is None:
            self._start_time = now
            self._start_pct = pct
            return None
        if pct >= 100.0:
            return 0.0
        elapsed = now - self._start_time
        gained = pct - self._start_pct
        if elapsed < self.min_elapsed or gained <= 0.0:
            return None
        rate = gained / elapsed
        return round((100.0 - pct) / rate, 1)
