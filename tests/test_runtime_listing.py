"""``list_jobs``: newest first, filters, cursor pagination, bad cursors."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from conftest import RuntimeFactory, job_events

from aura_actors.pipelines import default_pipelines
from aura_actors.runtime import (
    ANY_OWNER,
    Commit,
    InvalidCursor,
    JobNotFound,
    JobRecord,
    JobStatus,
    MemoryStorage,
    Runtime,
    RuntimeConfig,
    open_runtime,
)


def _ids(records: list[JobRecord]) -> list[str]:
    return [record.id for record in records]


async def _all_pages(rt: Runtime, **filters: Any) -> tuple[list[str], list[int]]:
    """The ids of every job listed, page after page, and the size of each page."""
    ids: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        page = await rt.list_jobs(cursor=cursor, **filters)
        ids.extend(_ids(page.jobs))
        sizes.append(len(page.jobs))
        if page.next_cursor is None:
            return ids, sizes
        cursor = page.next_cursor


async def test_list_jobs(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(max_concurrent_jobs=100) as rt:
        owners = ["ann", "bob", None]
        jobs = [
            await rt.submit("synthetic", {"ticks": 1000, "tickSeconds": 1}, owner=owners[i % 3])
            for i in range(23)
        ]
        for job in jobs[::4]:
            await rt.cancel(job.id)
        for job in jobs[::4]:
            await job_events(rt, job.id)
        newest_first = [await rt.get(job.id) for job in reversed(jobs)]
        all_ids = _ids(newest_first)

        page = await rt.list_jobs()
        assert _ids(page.jobs) == all_ids[:50] and page.next_cursor is None
        # a listing shows each job as it is now, with its owner
        assert [(r.owner, r.data) for r in page.jobs] == [(r.owner, r.data) for r in newest_first]
        assert [r.seq for r in page.jobs] == list(range(22, -1, -1))
        everything, sizes = await _all_pages(rt, limit=5)
        assert everything == all_ids
        assert sizes == [5, 5, 5, 5, 3]
        exact, sizes = await _all_pages(rt, limit=23)
        assert exact == all_ids and sizes == [23], "no empty last page"
        singles, _ = await _all_pages(rt, limit=1)
        assert singles == all_ids

        anns, _ = await _all_pages(rt, owner="ann", limit=3)
        assert anns == _ids([j for j in newest_first if j.owner == "ann"]) and anns
        anonymous, _ = await _all_pages(rt, owner=None, limit=2)
        assert anonymous == _ids([j for j in newest_first if j.owner is None]) and anonymous
        assert (await _all_pages(rt, owner=ANY_OWNER))[0] == all_ids

        canceled, _ = await _all_pages(rt, status=JobStatus.CANCELED, limit=2)
        assert canceled == _ids([j for j in newest_first if j.status is JobStatus.CANCELED])
        assert len(canceled) == 6
        running, _ = await _all_pages(rt, status=JobStatus.RUNNING, limit=4)
        assert running == _ids([j for j in newest_first if j.status is JobStatus.RUNNING])
        assert len(running) == 17
        bobs_canceled, _ = await _all_pages(rt, owner="bob", status=JobStatus.CANCELED, limit=1)
        assert bobs_canceled == _ids(
            [j for j in newest_first if j.owner == "bob" and j.status is JobStatus.CANCELED]
        )
        assert (await rt.list_jobs(status=JobStatus.DONE)).jobs == []
        assert (await rt.list_jobs(owner="nobody")).jobs == []


@pytest.mark.parametrize("cursor", ["", "abc", "-1", "1.5", " 3", "99", "²", "٣", "1" * 40, "0x1"])
async def test_bad_cursor_is_refused(runtime: Runtime, cursor: str) -> None:
    for _ in range(3):
        await runtime.submit("synthetic")
    with pytest.raises(InvalidCursor) as info:
        await runtime.list_jobs(cursor=cursor)
    assert info.value.code == "invalid_cursor"


async def test_limit_must_be_positive(runtime: Runtime) -> None:
    for limit in (0, 201):
        with pytest.raises(ValueError):
            await runtime.list_jobs(limit=limit)


async def test_get_respects_owners(runtime: Runtime) -> None:
    job = await runtime.submit("synthetic", {"ticks": 1, "tickSeconds": 0}, owner="ann")
    assert (await runtime.get(job.id)).id == job.id
    assert (await runtime.get(job.id, owner="ann")).owner == "ann"
    for stranger in ("bob", None):
        with pytest.raises(JobNotFound):
            await runtime.get(job.id, owner=stranger)
        with pytest.raises(JobNotFound):
            await runtime.subscribe_job(job.id, owner=stranger)
    with pytest.raises(JobNotFound):
        await runtime.get("missing")
    # the same once the job has ended and is read from storage
    await job_events(runtime, job.id)
    await runtime.broadcaster.barrier()
    await trio.testing.wait_all_tasks_blocked()
    assert job.id not in runtime._live
    assert (await runtime.get(job.id, owner="ann")).status is JobStatus.DONE
    for stranger in ("bob", None):
        with pytest.raises(JobNotFound):
            await runtime.get(job.id, owner=stranger)
        with pytest.raises(JobNotFound):
            await runtime.subscribe_job(job.id, owner=stranger)
        with pytest.raises(JobNotFound):
            await runtime.logs(job.id, owner=stranger)


class _HeldStorage(MemoryStorage):
    """Stores every commit but those made while ``held`` is set, until it is cleared."""

    def __init__(self) -> None:
        super().__init__(history_ttl=3600.0, max_history_events=100)
        self.held = False
        self.released = trio.Event()

    async def commit(self, commit: Commit) -> None:
        if self.held:
            await self.released.wait()
        await super().commit(commit)


async def test_a_status_filter_lists_live_jobs_by_their_status_in_memory() -> None:
    """A job already Running whose stored row still says Queued (its Running commit is
    in flight) is listed under Running, not Queued; and again once it is stored."""
    storage = _HeldStorage()
    async with open_runtime(RuntimeConfig(), default_pipelines(), storage=storage) as rt:
        waiting = {"stages": 1, "ticks": 1, "tickSeconds": 600}
        storage.held = False
        record = await rt.submit("synthetic", waiting)
        storage.held = True  # the creation is stored; what follows waits
        await trio.testing.wait_all_tasks_blocked()
        assert (await rt.get(record.id)).status is JobStatus.RUNNING
        stored = await storage.get(record.id)
        assert stored is not None and stored.status is JobStatus.QUEUED
        running = await rt.list_jobs(status=JobStatus.RUNNING)
        assert _ids(running.jobs) == [record.id]
        assert (await rt.list_jobs(status=JobStatus.QUEUED)).jobs == []
        storage.held = False
        storage.released.set()
        await rt.cancel(record.id)
