"""``list_jobs``: newest first, filters, cursor pagination, bad cursors."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from conftest import RuntimeFactory, job_events

from aura_actors.runtime import ANY_OWNER, InvalidCursor, Job, JobNotFound, JobStatus, Runtime


def _all_pages(rt: Runtime, **filters: Any) -> tuple[list[Job], list[int]]:
    jobs: list[Job] = []
    sizes: list[int] = []
    cursor = None
    while True:
        page = rt.list_jobs(cursor=cursor, **filters)
        jobs.extend(page.jobs)
        sizes.append(len(page.jobs))
        if page.next_cursor is None:
            return jobs, sizes
        cursor = page.next_cursor


async def test_list_jobs(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(max_concurrent_jobs=100) as rt:
        owners = ["ann", "bob", None]
        jobs = [
            rt.submit("synthetic", {"ticks": 1000, "tickSeconds": 1}, owner=owners[i % 3])
            for i in range(23)
        ]
        for job in jobs[::4]:
            rt.cancel(job.id)
        for job in jobs[::4]:
            await job_events(rt, job.id)
        newest_first = list(reversed(jobs))

        page = rt.list_jobs()
        assert page.jobs == newest_first[:50] and page.next_cursor is None
        everything, sizes = _all_pages(rt, limit=5)
        assert everything == newest_first
        assert sizes == [5, 5, 5, 5, 3]
        exact, sizes = _all_pages(rt, limit=23)
        assert exact == newest_first and sizes == [23], "no empty last page"
        singles, _ = _all_pages(rt, limit=1)
        assert singles == newest_first

        anns, _ = _all_pages(rt, owner="ann", limit=3)
        assert anns == [j for j in newest_first if j.owner == "ann"] and anns
        anonymous, _ = _all_pages(rt, owner=None, limit=2)
        assert anonymous == [j for j in newest_first if j.owner is None] and anonymous
        assert _all_pages(rt, owner=ANY_OWNER)[0] == newest_first

        canceled, _ = _all_pages(rt, status=JobStatus.CANCELED, limit=2)
        assert canceled == [j for j in newest_first if j.status is JobStatus.CANCELED]
        assert len(canceled) == 6
        running, _ = _all_pages(rt, status=JobStatus.RUNNING, limit=4)
        assert len(running) == 17 and all(j.status is JobStatus.RUNNING for j in running)
        bobs_canceled, _ = _all_pages(rt, owner="bob", status=JobStatus.CANCELED, limit=1)
        assert bobs_canceled == [
            j for j in newest_first if j.owner == "bob" and j.status is JobStatus.CANCELED
        ]
        assert rt.list_jobs(status=JobStatus.DONE).jobs == []
        assert rt.list_jobs(owner="nobody").jobs == []


@pytest.mark.parametrize("cursor", ["", "abc", "-1", "1.5", " 3", "99", "²", "٣", "1" * 40, "0x1"])
async def test_bad_cursor_is_refused(runtime: Runtime, cursor: str) -> None:
    for _ in range(3):
        runtime.submit("synthetic")
    with pytest.raises(InvalidCursor) as info:
        runtime.list_jobs(cursor=cursor)
    assert info.value.code == "invalid_cursor"


async def test_limit_must_be_positive(runtime: Runtime) -> None:
    with pytest.raises(ValueError):
        runtime.list_jobs(limit=0)


async def test_get_respects_owners(runtime: Runtime) -> None:
    job = runtime.submit("synthetic", owner="ann")
    assert runtime.get(job.id) is job
    assert runtime.get(job.id, owner="ann") is job
    for stranger in ("bob", None):
        with pytest.raises(JobNotFound):
            runtime.get(job.id, owner=stranger)
        with pytest.raises(JobNotFound):
            runtime.subscribe_job(job.id, owner=stranger)
    with pytest.raises(JobNotFound):
        runtime.get("missing")
