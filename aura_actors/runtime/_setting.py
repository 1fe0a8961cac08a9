"""What a settings field says about itself: help, range, flag name (in its metadata).

Settings are frozen dataclasses whose fields carry a :class:`Setting` in their
metadata, ``field(default=..., metadata=about("what it is", ge=0))``. The
command line's flags, their ``AURA_*`` variables, the defaults ``--help``
shows and the range checks are all made from these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

#: The metadata key of a field's :class:`Setting`.
SETTING = "aura_setting"


@dataclass(frozen=True, slots=True)
class Setting:
    """What a settings field says about itself: its help, its range, its flag."""

    help: str
    #: Inclusive lower bound.
    ge: float | None = None
    #: Exclusive lower bound.
    gt: float | None = None
    #: Inclusive upper bound.
    le: float | None = None
    #: The flag's argument name in ``--help`` (``FILE``, ``DIR``).
    metavar: str | None = None
    #: The flag's and variable's name when not the field's (``cors_origin``).
    name: str | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range, or ``None`` (NaN is never in range)."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        if isinstance(value, float) and math.isnan(value):
            return "must be a number"
        if self.gt is not None and not value > self.gt:
            return "must be positive" if self.gt == 0 else f"must be greater than {self.gt:g}"
        if self.ge is not None and not value >= self.ge:
            return "must not be negative" if self.ge == 0 else f"must be at least {self.ge:g}"
        if self.le is not None and not value <= self.le:
            return f"must be at most {self.le:g}"
        return None


def about(help: str, **options: Any) -> dict[str, Setting]:
    """A settings field's ``metadata``: ``field(default=..., metadata=about("...", ge=0))``."""
    return {SETTING: Setting(help, **options)}


def check_ranges(settings: object) -> None:
    """Raise :class:`ValueError` naming the first field of ``settings`` out of its range."""
    for item in fields(settings):  # type: ignore[arg-type]
        spec = item.metadata.get(SETTING)
        problem = spec.problem(getattr(settings, item.name)) if spec is not None else None
        if problem is not None:
            raise ValueError(f"{item.name} {problem}")
