"""What job actors send the broadcaster: events, with what is stored beside them, and barriers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from ..protocol import AnyEventData
from ._events import JsonObject
from ._records import LogLine
from ._storage import StorageUnavailable

if TYPE_CHECKING:
    from ._job import Job


@dataclass(slots=True, eq=False)
class CommitWaiter:
    """Set once the items it waits for are stored (``error`` is ``None``) or refused."""

    done: trio.Event = field(default_factory=trio.Event)
    error: StorageUnavailable | None = None

    def resolve(self, error: StorageUnavailable | None = None) -> None:
        self.error = error
        self.done.set()


@dataclass(slots=True, eq=False)
class Outgoing:
    """An item of the broadcaster's inbox (a plain event goes as a pair: see ``send_event``).

    An event of ``job`` (its typed ``payload``), optionally with the job's
    snapshot to store and its log lines; ``create`` marks the job's first event,
    which also inserts its record. An item without a job is a barrier: its
    ``waiter`` is resolved once everything sent before it is stored.
    """

    job: Job | None
    payload: AnyEventData | None = None
    snapshot: JsonObject | None = None
    logs: list[LogLine] | None = None
    create: bool = False
    waiter: CommitWaiter | None = None


#: What the inbox holds: an :class:`Outgoing`, or a plain event as ``(job, payload)``.
InboxItem = Outgoing | tuple["Job", AnyEventData]
