"""A script of made-up jobs for the storage tests: the commits a broadcaster would make.

Both stores' tests (``test_store_sqlite.py``, ``test_store_redis.py``) feed
these commits to their store and to the in-memory one, and hold the answers
to the same model of a retained history (:func:`compacted`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from aura_actors.runtime import Commit, Event, EventId, EventIdGenerator, EventType, JobRecord

DAY = 86_400.0
T0 = 1_700_000_000.0


class WallClock:
    """An injectable ``time.time``: stands still until the test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Script:
    """Builds the commits a broadcaster would make, one per event, with increasing ids."""

    def __init__(self) -> None:
        millis = itertools.count(1_700_000_000_000, 7)
        self.ids = EventIdGenerator(lambda: next(millis) // 10)  # several ids per millisecond

    def snapshot(self, job_id: str, status: str, last: EventId, **extra: Any) -> dict[str, Any]:
        return {
            "id": job_id,
            "pipeline": "synthetic",
            "params": {"n": 1},
            "status": status,
            "lastEventId": str(last),
            "artifacts": [],
            "attempt": 1,
            **extra,
        }

    def item(
        self,
        job_id: str,
        owner: str | None,
        event_type: EventType,
        data: dict[str, Any],
        *,
        status: str | None = None,
        create: bool = False,
        logs: list[dict[str, Any]] | None = None,
    ) -> Commit:
        """One event of ``job_id`` (with its snapshot when ``status`` is given)."""
        event_id = self.ids.next_id()
        event = Event(event_id, event_type, {"jobId": job_id, **data}, job_id, owner)
        commit = Commit(events=[event])
        if status is not None:
            snapshot = self.snapshot(job_id, status, event_id)
            if create:
                commit.created.append(JobRecord(0, owner, snapshot))
            else:
                commit.snapshots[job_id] = snapshot
        if logs is not None:
            commit.logs[job_id] = logs
        return commit

    def created(self, job_id: str, owner: str | None = None) -> Commit:
        return self.item(
            job_id,
            owner,
            EventType.JOB_STATUS,
            {"status": "Queued", "previousStatus": None},
            status="Queued",
            create=True,
        )

    def running(self, job_id: str, owner: str | None = None) -> Commit:
        data = {"status": "Running", "previousStatus": "Queued"}
        return self.item(job_id, owner, EventType.JOB_STATUS, data, status="Running")

    def progress(self, job_id: str, owner: str | None, pct: float) -> Commit:
        return self.item(job_id, owner, EventType.STEP_PROGRESS, {"progressPct": pct})

    def step(self, job_id: str, owner: str | None, index: int, state: str) -> Commit:
        data = {"step": f"stage-{index + 1}", "stepIndex": index, "state": state}
        return self.item(job_id, owner, EventType.STEP_STATUS, data)

    def warning(self, job_id: str, owner: str | None) -> Commit:
        return self.item(job_id, owner, EventType.WARNING, {"message": "careful"})

    def status_done(self, job_id: str, owner: str | None = None) -> Commit:
        data = {"status": "Done", "previousStatus": "Running"}
        return self.item(job_id, owner, EventType.JOB_STATUS, data)

    def completed(self, job_id: str, owner: str | None = None) -> Commit:
        return self.item(
            job_id,
            owner,
            EventType.JOB_COMPLETED,
            {"artifacts": []},
            status="Done",
            logs=[{"at": "now", "level": "info", "stage": None, "message": f"{job_id} done"}],
        )

    def life(self, job_id: str, owner: str | None, *, runs: Iterable[int]) -> list[Step]:
        """A whole job, one step per event, stamped when the step is taken: created,
        running, per stage a run of ``n`` progress events with a warning in the middle,
        then done."""
        steps: list[Step] = [
            lambda: self.created(job_id, owner),
            lambda: self.running(job_id, owner),
        ]
        for index, n in enumerate(runs):
            steps.append(partial(self.step, job_id, owner, index, "Started"))
            for tick in range(n):
                steps.append(partial(self.progress, job_id, owner, index * 10 + tick))
                if tick == n // 2:
                    steps.append(partial(self.warning, job_id, owner))
            steps.append(partial(self.step, job_id, owner, index, "Completed"))
        steps.append(partial(self.status_done, job_id, owner))
        steps.append(partial(self.completed, job_id, owner))
        return steps


#: One event's commit, made (and its id stamped) when called.
Step = Callable[[], Commit]


def run_script(*lives: list[Step]) -> list[Commit]:
    """The steps of several jobs taken round robin: one commit per event, ids increasing."""
    commits: list[Commit] = []
    for group in itertools.zip_longest(*lives):
        commits.extend(step() for step in group if step is not None)
    return commits


def events_of(commits: Iterable[Commit], job_id: str) -> list[Event]:
    return [event for commit in commits for event in commit.events if event.job_id == job_id]


def batches(items: list[Commit], size: int) -> list[Commit]:
    """Items merged into commits of ``size`` items, as the broadcaster merges its inbox."""
    out: list[Commit] = []
    for start in range(0, len(items), size):
        batch = Commit()
        for item in items[start : start + size]:
            batch.merge(item)
        out.append(batch)
    return out


def key(event: Event) -> tuple[Any, ...]:
    return (event.id, event.type, event.data, event.job_id, event.owner)


def keys(events: Iterable[Event]) -> list[tuple[Any, ...]]:
    return [key(event) for event in events]


def compacted(events: list[Event], bound: int) -> tuple[list[Event], EventId | None]:
    """The contract's model of a retained history: runs of progress cut to their last
    event, then the newest ``bound`` events; and the newest id dropped for the bound."""
    runs: list[Event] = []
    for event in events:
        if (
            runs
            and event.type is EventType.STEP_PROGRESS
            and runs[-1].type is EventType.STEP_PROGRESS
        ):
            runs[-1] = event
        else:
            runs.append(event)
    if len(runs) <= bound:
        return runs, None
    return runs[-bound:], runs[-bound - 1].id


def assert_complete(stored: list[Event], committed: list[Event]) -> None:
    """``stored`` lost nothing of ``committed`` but intermediate progress: every other
    event, and the last progress event of every run, in order and once each."""
    committed_keys = keys(committed)
    stored_keys = keys(stored)
    assert all(k in committed_keys for k in stored_keys), "stored an event never committed"
    ids = [event.id for event in stored]
    assert ids == sorted(set(ids)), "not in id order, or twice"
    for index, event in enumerate(committed):
        last_of_run = event.type is not EventType.STEP_PROGRESS or (
            index + 1 == len(committed) or committed[index + 1].type is not EventType.STEP_PROGRESS
        )
        if last_of_run:
            assert key(event) in stored_keys, f"lost {event.id} {event.type}"


def copy_commit(commit: Commit) -> Commit:
    return Commit(
        created=[JobRecord(r.seq, r.owner, dict(r.data)) for r in commit.created],
        snapshots={k: dict(v) for k, v in commit.snapshots.items()},
        logs={k: list(v) for k, v in commit.logs.items()},
        events=list(commit.events),
    )
