"""What the runtime tells an observer (metrics) as it works; a no-op by default."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ._events import Event


class RuntimeObserver(Protocol):
    """Hooks the runtime calls synchronously from its own tasks; they must be quick."""

    def committed(self, seconds: float, events: Sequence[Event]) -> None:
        """A commit of ``events`` took ``seconds`` (wall time, the storage's write)."""
        ...

    def commit_failed(self) -> None:
        """A commit failed (storage is failing)."""
        ...

    def cancel_took(self, seconds: float) -> None:
        """A cancel was asked for and, ``seconds`` later, its job's end was stored."""
        ...


class NullObserver:
    """Observes nothing."""

    def committed(self, seconds: float, events: Sequence[Event]) -> None:
        """Nothing."""

    def commit_failed(self) -> None:
        """Nothing."""

    def cancel_took(self, seconds: float) -> None:
        """Nothing."""
