"""The jobs waiting for a slot: in order per user, and users served in turn."""

from __future__ import annotations

from collections import OrderedDict

from ._job import Job


class FairQueue:
    """Waiting jobs, first in first out per owner, with owners taking turns.

    When jobs of several owners wait, :meth:`pop` serves the owners round
    robin, so one owner's backlog never holds back another owner's first job.
    Jobs put back :meth:`first` (a job that ran when the process stopped and
    runs again) are served before every other. All operations are O(1) but
    :meth:`remove` of a job in the middle of its owner's line (O(its line)).
    """

    def __init__(self) -> None:
        self._first: OrderedDict[str, Job] = OrderedDict()
        self._lines: OrderedDict[str | None, OrderedDict[str, Job]] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def push(self, job: Job) -> None:
        """Add ``job`` at the end of its owner's line."""
        line = self._lines.get(job.owner)
        if line is None:
            line = self._lines[job.owner] = OrderedDict()
        line[job.id] = job
        self._count += 1

    def push_first(self, job: Job) -> None:
        """Add ``job`` ahead of every owner's line (after others pushed first)."""
        self._first[job.id] = job
        self._count += 1

    def pop(self) -> Job:
        """The next job: the first ones, then the head of the next owner's line in turn."""
        if self._first:
            self._count -= 1
            return self._first.popitem(last=False)[1]
        owner, line = next(iter(self._lines.items()))
        _, job = line.popitem(last=False)
        # This owner goes to the back of the turn order (or leaves it, if done).
        del self._lines[owner]
        if line:
            self._lines[owner] = line
        self._count -= 1
        return job

    def remove(self, job: Job) -> bool:
        """Take ``job`` out wherever it waits; whether it was there."""
        if self._first.pop(job.id, None) is not None:
            self._count -= 1
            return True
        line = self._lines.get(job.owner)
        if line is None or line.pop(job.id, None) is None:
            return False
        if not line:
            del self._lines[job.owner]
        self._count -= 1
        return True
