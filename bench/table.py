"""The final table: one row per measure with value, limit-or-peer value and ratio."""

from __future__ import annotations

import math
from collections.abc import Iterable

from bench.results import Measure


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 1e5:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.2e}"


def rows(measures: Iterable[Measure]) -> list[list[str]]:
    """The table's cells: scenario, measure, unit, value, reference, ratio, target."""
    out = []
    for m in measures:
        ref = _fmt(m.reference) if m.reference is not None else "-"
        label = f"{ref} ({m.reference_label})" if m.reference is not None else "-"
        ratio = m.ratio
        ratio_text = "-" if ratio is None else f"{ratio:.2f}x"
        out.append([m.scenario, m.name, m.unit, _fmt(m.value), label, ratio_text, m.target])
    return out


HEADERS = ["scenario", "measure", "unit", "value", "limit / peer", "ratio", "target"]


def render_text(measures: Iterable[Measure]) -> str:
    """A plain-text table for the terminal."""
    body = rows(measures)
    widths = [len(h) for h in HEADERS]
    for row in body:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body)
    return "\n".join(lines)


def render_markdown(measures: Iterable[Measure]) -> str:
    """The same table in Markdown, for docs/benchmarks.md."""
    body = rows(measures)
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines.extend("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body)
    return "\n".join(lines)
