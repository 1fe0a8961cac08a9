"""What the broadcaster sets aside while a commit it sent waits to be sent again.

A commit that failed with its outcome unknown (its reply lost: it may be
stored) is sent again as it was: a store that knows a commit by its token
answers "applied" for what it held when first sent, so anything added to it
would never be stored. What arrives meanwhile is held here for the next
commit, except new jobs, refused at once (their submitters get a 503, as
those of the failed commit did).
"""

from __future__ import annotations

from collections import deque

from ._inbox import Inbox
from ._outgoing import InboxItem, Outgoing
from ._storage import StorageUnavailable


class HeldBack:
    """Inbox items set aside, in order, up to ``limit`` of them (beyond, they stay in
    the inbox, whose senders then wait for room)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: The items, oldest first (truthy while any is held).
        self.items: deque[InboxItem] = deque()

    def hold(self, inbox: Inbox[InboxItem], error: StorageUnavailable) -> None:
        """Move what waits in ``inbox`` here, resolving each new job's waiter with ``error``."""
        room = self.limit - len(self.items)
        if room <= 0:
            return
        for item in inbox.take(room):
            if isinstance(item, Outgoing) and item.create and item.waiter is not None:
                item.waiter.resolve(error)
                continue
            self.items.append(item)

    def take(self, inbox: Inbox[InboxItem], limit: int) -> list[InboxItem]:
        """Up to ``limit`` items: those held first, then the inbox's."""
        items = self.items
        taken = [items.popleft() for _ in range(min(limit, len(items)))]
        if len(taken) < limit:
            taken += inbox.take(limit - len(taken))
        return taken

    def drop(self, error: StorageUnavailable) -> int:
        """Give up on what is held (storage still failing at shutdown): resolve its
        waiters with ``error``; return how many events are lost."""
        lost = 0
        for item in self.items:
            if not isinstance(item, Outgoing):
                lost += 1
                continue
            if item.job is not None:
                lost += 1
            if item.waiter is not None:
                item.waiter.resolve(error)
        self.items.clear()
        return lost
