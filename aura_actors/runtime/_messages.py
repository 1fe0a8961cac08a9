"""Messages from stage actors to their job actor (over the job's memory channel)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StageStarted:
    index: int


@dataclass(frozen=True, slots=True)
class Progress:
    index: int
    fraction: float
    message: str | None
    current_item: int | None
    total_items: int | None


@dataclass(frozen=True, slots=True)
class Warning_:
    index: int
    message: str


@dataclass(frozen=True, slots=True)
class StageCompleted:
    index: int


@dataclass(frozen=True, slots=True)
class StageFailed:
    index: int
    code: str
    message: str
    remediation: str


Message = StageStarted | Progress | Warning_ | StageCompleted | StageFailed
