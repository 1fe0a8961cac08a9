"""Event ids: ``<unixMillis>-<counter>``, ordered as the pair of integers."""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["EVENT_ID_PATTERN", "EventId"]

#: An event id as text: two decimal integers without leading zeros, at most 18 digits each.
EVENT_ID_PATTERN = r"^(0|[1-9][0-9]{0,17})-(0|[1-9][0-9]{0,17})$"
_EVENT_ID_RE = re.compile(EVENT_ID_PATTERN.strip("^$"))


class EventId(NamedTuple):
    """An event id, ordered as the pair of integers ``(millis, counter)``."""

    millis: int
    counter: int

    def __str__(self) -> str:
        return f"{self.millis}-{self.counter}"

    @classmethod
    def parse(cls, text: str) -> EventId:
        """Parse ``"<millis>-<counter>"``; raise :class:`ValueError` on anything else."""
        match = _EVENT_ID_RE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"malformed event id {text!r}: expected '<unixMillis>-<counter>'")
        return cls(int(match.group(1)), int(match.group(2)))
