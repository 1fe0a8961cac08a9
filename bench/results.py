"""The results of one run: measures (rows of the final table) and raw scenario data.

Saved as JSON under the results folder, as ``<timestamp>.json`` and ``latest.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

JsonDict = dict[str, Any]


@dataclass(slots=True)
class Measure:
    """One row of the final table.

    ``reference`` is the limit (bare trio, raw channels) or the peer measured
    in the same run; ``ratio`` is ``value / reference``. ``better`` says
    whether a lower or higher value is better, so a reader knows which way
    a ratio should go.
    """

    scenario: str
    name: str
    unit: str
    value: float
    reference: float | None = None
    reference_label: str = ""
    better: str = "lower"
    target: str = ""

    @property
    def ratio(self) -> float | None:
        """``value / reference``, or ``None`` without a usable reference."""
        if self.reference is None or self.reference == 0 or math.isnan(self.reference):
            return None
        if math.isnan(self.value):
            return None
        return self.value / self.reference

    def to_json(self) -> JsonDict:
        """The row as JSON, with its ratio."""
        row = asdict(self)
        row["ratio"] = self.ratio
        return row


@dataclass(slots=True)
class RunResults:
    """Everything one run produced."""

    meta: JsonDict
    measures: list[Measure] = field(default_factory=list)
    scenarios: JsonDict = field(default_factory=dict)

    def add(self, measure: Measure) -> None:
        """Append one row to the table."""
        self.measures.append(measure)

    def to_json(self) -> JsonDict:
        """The whole run as JSON."""
        return {
            "meta": self.meta,
            "measures": [m.to_json() for m in self.measures],
            "scenarios": self.scenarios,
        }

    def save(self, results_dir: Path, stamp: str) -> Path:
        """Write ``<stamp>.json`` and ``latest.json`` into ``results_dir``; return the first."""
        results_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), indent=1, allow_nan=True, default=str)
        path = results_dir / f"{stamp}.json"
        for target in (path, results_dir / "latest.json"):
            tmp = target.with_suffix(".json.tmp")
            tmp.write_text(text)
            tmp.replace(target)
        return path


def load(path: Path) -> JsonDict:
    """Read a results file written by :meth:`RunResults.save`."""
    data: JsonDict = json.loads(path.read_text())
    return data


def measure_from_json(row: JsonDict) -> Measure:
    """Rebuild a :class:`Measure` from its JSON row (the ratio is recomputed)."""
    fields = {k: v for k, v in row.items() if k != "ratio"}
    return Measure(**fields)
