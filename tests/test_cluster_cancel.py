"""Cancels across processes against real Redis: the node that gets a cancel sets the
job's flag and publishes; the worker running the job cancels its scope.

``api-1`` stores and queues the job; ``w-1`` claims it and "runs" it as a task
in a cancel scope watched by its :class:`CancelListener`, fed by its live feed.
"""

from __future__ import annotations

from pathlib import Path

import trio
from support.cluster import api_store
from support.redis import open_store
from support.store_script import Script

from aura_actors.cluster import DispatchQueue, RedisStorage
from aura_actors.cluster._cancels import CancelListener
from aura_actors.cluster._live import LiveFeed
from aura_actors.runtime._hub import Hub


class FakeJob:
    """A running job: a task in a cancel scope, until cancelled."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.ended = trio.Event()

    async def run(self) -> None:
        with self.scope:
            await trio.sleep_forever()
        self.ended.set()


async def _claimed(api: RedisStorage, worker: DispatchQueue, script: Script) -> str:
    await worker.ensure_group()
    await api.commit(script.created("a"))
    [claim] = await worker.claim(1)
    return claim.job_id


async def test_a_cancel_sent_to_another_node_cancels_the_running_job(
    tmp_path: Path, prefix: str
) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        worker = DispatchQueue(api.client, api.keys, "w-1")
        listener = CancelListener(worker)
        await nursery.start(LiveFeed(api, Hub(), listener).run)
        job_id = await _claimed(api, worker, Script())
        job = FakeJob()
        nursery.start_soon(job.run)
        await listener.watch(job_id, job.scope)
        assert not job.scope.cancel_called

        assert await DispatchQueue(api.client, api.keys, "api-1").request_cancel(job_id) == "w-1"
        with trio.fail_after(10):
            await job.ended.wait()
        listener.forget(job_id)


async def test_a_cancel_between_the_claim_and_the_start_is_not_lost(
    tmp_path: Path, prefix: str
) -> None:
    async with api_store(tmp_path, prefix) as (api, nursery):
        worker = DispatchQueue(api.client, api.keys, "w-1")
        listener = CancelListener(worker)
        await nursery.start(LiveFeed(api, Hub(), listener).run)
        job_id = await _claimed(api, worker, Script())
        # Published before the worker watches the job: the message finds no scope...
        await DispatchQueue(api.client, api.keys, "api-1").request_cancel(job_id)
        job = FakeJob()
        # ...and watching reads the flag: the job is cancelled before it starts.
        await listener.watch(job_id, job.scope)
        assert job.scope.cancel_called


async def test_a_cancel_published_while_the_feed_was_away_is_read_again(
    tmp_path: Path, prefix: str
) -> None:
    async with open_store(tmp_path, prefix, node="api-1") as api:
        worker = DispatchQueue(api.client, api.keys, "w-1")
        listener = CancelListener(worker)
        job_id = await _claimed(api, worker, Script())
        job = FakeJob()
        await listener.watch(job_id, job.scope)
        # No feed runs (its connection is down): the publish reaches nobody.
        await DispatchQueue(api.client, api.keys, "api-1").request_cancel(job_id)
        assert not job.scope.cancel_called
        async with trio.open_nursery() as nursery:
            await nursery.start(LiveFeed(api, Hub(), listener).run)  # connected: flags read
            assert job.scope.cancel_called
            nursery.cancel_scope.cancel()
