"""Runtimes as nodes of one cluster, in one trio run, on one key prefix of a real Redis.

An ``api`` node stores and queues jobs and never runs them; a ``worker`` node
claims them by free slots, wakes on a new job at once, and runs them; the API
node's subscriptions follow a job run on the worker through its live feed to
the terminal event; cancels reach a queued job (by a commit) and a running one
(through the worker); the nodes share one data dir (a lock per node name).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import coredis
import pytest
import trio
from support.cluster import WAITING, has_status, node, until
from support.redis import SHARED_URL

from aura_actors.cluster import DispatchQueue, KeyLayout
from aura_actors.cluster import _worker as worker_module
from aura_actors.runtime import (
    DataDirLocked,
    Event,
    EventType,
    JobAlreadyFinished,
    JobStatus,
    PipelineRegistry,
    Runtime,
    RuntimeConfig,
)

QUICK = {"stages": 2, "ticks": 3, "tickSeconds": 0}


async def _status(runtime: Runtime, job_id: str) -> JobStatus:
    return (await runtime.get(job_id)).status


async def _events(runtime: Runtime, job_id: str, **options: Any) -> list[Event]:
    with trio.fail_after(20):
        with await runtime.subscribe_job(job_id, **options) as subscription:
            return [event async for event in subscription]


async def test_an_api_node_queues_and_a_worker_claims_only_its_free_slots(
    tmp_path: Path, prefix: str
) -> None:
    async with node(tmp_path, prefix, "api", "api-1") as api:
        ids = [(await api.submit("synthetic", WAITING)).id for _ in range(5)]
        await trio.sleep(0.3)
        assert api.running_count == 0  # an API node runs nothing
        assert [await _status(api, job) for job in ids] == [JobStatus.QUEUED] * 5
        async with node(tmp_path, prefix, "worker", "w-1", max_concurrent_jobs=2) as worker:
            await until(lambda: worker.running_count == 2)
            await trio.sleep(0.3)  # no third claim comes
            assert worker.running_count == 2
            statuses = [await _status(api, job) for job in ids]
            assert statuses == [JobStatus.RUNNING] * 2 + [JobStatus.QUEUED] * 3  # oldest first
            snapshot = (await api.get(ids[0])).data
            assert snapshot["node"] == "w-1" and snapshot["attempt"] == 1

            # A slot frees (the first job is cancelled through the API node): one more claim.
            await api.cancel(ids[0])
            await until(
                lambda: _all_status(api, ids, [JobStatus.CANCELED] + [JobStatus.RUNNING] * 2)
            )
            assert await _status(api, ids[3]) is JobStatus.QUEUED


async def _all_status(api: Runtime, ids: list[str], first: list[JobStatus]) -> bool:
    return [await _status(api, job) for job in ids[: len(first)]] == first


async def test_a_submit_wakes_an_idle_worker_at_once(
    tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's wait on the queue ends when an entry is added, not by polling: with
    its longest wait set to a minute, jobs still start within a second of their submit."""
    monkeypatch.setattr(worker_module, "WAIT_SECONDS", 60.0)
    async with node(tmp_path, prefix, "api", "api-1") as api, node(tmp_path, prefix, "worker", "w"):
        await trio.sleep(0.2)  # the worker waits on the queue
        job = await api.submit("synthetic", QUICK)
        with trio.fail_after(1):
            events = await _events(api, job.id)
        assert events[-1].type is EventType.JOB_COMPLETED
    async with node(tmp_path, prefix, "all", "all-1") as solo:
        await trio.sleep(0.2)
        job = await solo.submit("synthetic", QUICK)
        with trio.fail_after(1):
            events = await _events(solo, job.id)
        assert events[-1].type is EventType.JOB_COMPLETED
        assert (await solo.get(job.id)).data["node"] == "all-1"


async def test_an_api_node_follows_a_job_run_elsewhere_to_its_end(
    tmp_path: Path, prefix: str
) -> None:
    """Subscriptions on the API node, opened before the job runs, while it runs and after
    it ended, all see every event once, in order, and end after the terminal event; a
    resume from any id is exact; ``/api/events`` gets the worker's events too."""
    params = {"stages": 2, "ticks": 3, "tickSeconds": 0.05}
    async with node(tmp_path, prefix, "api", "api-1") as api:
        everything = await api.subscribe_all(owner=None)
        job = await api.submit("synthetic", params)
        early = await api.subscribe_job(job.id)
        async with node(tmp_path, prefix, "worker", "w-1"):
            await until(has_status, api, job.id, JobStatus.RUNNING)
            middle = await api.subscribe_job(job.id)
            with trio.fail_after(20):
                seen = [event async for event in early]
                later = [event async for event in middle]
        stored = await _events(api, job.id)  # from storage alone now
        ids = [e.id for e in stored]
        assert stored[0].type is EventType.JOB_STATUS
        assert stored[-1].type is EventType.JOB_COMPLETED
        # Runs of step-progress are compacted in storage; everything else is all there.
        for events in (seen, later):
            assert events[-1].type is EventType.JOB_COMPLETED, [str(e.id) for e in events]
            got = [e.id for e in events]
            assert got == sorted(got) and len(set(got)) == len(got)  # type: ignore[type-var]
        assert set(ids) <= {e.id for e in seen}
        assert _settled(seen) == _settled(stored)
        assert _settled(later) == _settled(stored)[-len(_settled(later)) :]
        for index, event in enumerate(stored):
            resumed = await _events(api, job.id, after=event.id)
            assert [e.id for e in resumed] == ids[index + 1 :]
        with trio.fail_after(10):
            mine = []
            while not mine or mine[-1].type is not EventType.JOB_COMPLETED:
                mine += [e for e in await everything.receive_batch() if e.job_id == job.id]
        assert {e.id for e in stored} <= {e.id for e in mine}
        everything.close()


def _settled(events: list[Event]) -> list[Any]:
    return [e.id for e in events if e.type is not EventType.STEP_PROGRESS]


async def test_cancels_through_the_api_node_reach_queued_and_running_jobs(
    tmp_path: Path, prefix: str
) -> None:
    async with (
        node(tmp_path, prefix, "api", "api-1") as api,
        node(tmp_path, prefix, "worker", "w-1", max_concurrent_jobs=1) as worker,
    ):
        running = await api.submit("synthetic", WAITING)
        await until(has_status, api, running.id, JobStatus.RUNNING)
        queued = await api.submit("synthetic", WAITING)
        watching = await api.subscribe_job(queued.id)

        # Queued, claimed by no worker: ended by the API node's commit, out of the queue.
        answer = await api.cancel(queued.id)
        assert answer.status is JobStatus.CANCELED
        with trio.fail_after(10):
            ends = [event async for event in watching]
        assert ends[-1].type is EventType.JOB_CANCELLED
        assert (await api.get(queued.id)).status is JobStatus.CANCELED

        # Running on the worker: the cancel reaches its scope there.
        following = await api.subscribe_job(running.id)
        answer = await api.cancel(running.id)
        assert answer.status is JobStatus.RUNNING  # asked; the worker ends it
        with trio.fail_after(10):
            events = [event async for event in following]
        assert events[-1].type is EventType.JOB_CANCELLED
        assert events[-1].data["message"] == "canceled by user"
        await until(lambda: worker.running_count == 0)
        with pytest.raises(JobAlreadyFinished):
            await api.cancel(running.id)

        # The freed slot never picks up the cancelled queued job.
        await trio.sleep(0.3)
        assert worker.running_count == 0
        assert (await api.get(queued.id)).data["node"] is None


async def test_a_cancel_that_loses_the_race_to_a_claim_asks_the_worker(
    tmp_path: Path, prefix: str
) -> None:
    """The job is claimed (by a worker that has not started it) after the API node read
    it as queued: its commit ending the job is refused whole, the rest of the batch is
    stored, and the cancel goes to the worker as a flag and a publish."""
    async with node(tmp_path, prefix, "api", "api-1") as api:
        job = await api.submit("synthetic", WAITING)
        other = await api.submit("synthetic", WAITING)
        async with coredis.Redis.from_url(SHARED_URL, decode_responses=True) as client:
            queue = DispatchQueue(client, KeyLayout(prefix), "w-slow")
            assert [claim.job_id for claim in await queue.claim(1)] == [job.id]
            answer = await api.cancel(job.id)
            assert answer.status is JobStatus.QUEUED  # sent to w-slow, which holds it
            assert await queue.cancel_requested(job.id)
            # The broadcaster went on: the other job is still cancelled by a commit.
            assert (await api.cancel(other.id)).status is JobStatus.CANCELED
            assert api.storage_problem is None


async def test_a_job_whose_pipeline_the_worker_lacks_ends_failed_not_lost(
    tmp_path: Path, prefix: str
) -> None:
    async with (
        node(tmp_path, prefix, "api", "api-1") as api,
        node(tmp_path, prefix, "worker", "w-bare", PipelineRegistry()),
    ):
        job = await api.submit("synthetic", QUICK)
        events = await _events(api, job.id)
    assert [e.type for e in events][-1] is EventType.JOB_FAILED
    assert events[-1].data["errors"][0]["code"] == "pipeline_unavailable"


async def test_nodes_share_the_data_dir_but_not_a_node_name(tmp_path: Path, prefix: str) -> None:
    async with node(tmp_path, prefix, "api", "n-1"), node(tmp_path, prefix, "worker", "n-2"):
        assert (tmp_path / "data" / "aura-node-n-1.lock").exists()
        assert not (tmp_path / "data" / "aura.lock").exists()
        with pytest.raises(DataDirLocked, match="node name n-1 is in use"):
            async with node(tmp_path, prefix, "all", "n-1"):
                pass  # never reached


def test_role_and_node_name_need_redis() -> None:
    with pytest.raises(ValueError, match="need --redis"):
        RuntimeConfig(role="worker").check_cluster_flags()
    with pytest.raises(ValueError, match="need --redis"):
        RuntimeConfig(node_name="n").check_cluster_flags()
    with pytest.raises(ValueError, match="node_name"):
        RuntimeConfig(redis_url=SHARED_URL, node_name="a b")
    named = RuntimeConfig(redis_url=SHARED_URL).with_node_name().node_name
    assert named is not None and named.endswith(f"-{os.getpid()}")
    assert RuntimeConfig().with_node_name().node_name is None


def test_the_role_flags_come_from_the_settings_and_need_redis() -> None:
    from aura_actors.cli import build_parser
    from aura_actors.web import SettingsError, settings_from_args

    parser = build_parser()
    flags = ["serve", "--redis", SHARED_URL, "--role", "worker", "--node-name", "w-9"]
    settings = settings_from_args(parser.parse_args(flags), {})
    assert (settings.runtime.role, settings.runtime.node_name) == ("worker", "w-9")
    env = {"AURA_REDIS": SHARED_URL, "AURA_ROLE": "api", "AURA_NODE_NAME": "a-9"}
    from_env = settings_from_args(parser.parse_args(["serve"]), env).runtime
    assert (from_env.role, from_env.node_name) == ("api", "a-9")
    assert settings_from_args(parser.parse_args(["serve"]), {}).runtime.role == "all"
    with pytest.raises(SettingsError, match="need --redis"):
        settings_from_args(parser.parse_args(["serve", "--role", "api"]), {})
    with pytest.raises(SettingsError, match="need --redis"):
        settings_from_args(parser.parse_args(["serve"]), {"AURA_NODE_NAME": "n"})
    done = subprocess.run(
        [sys.executable, "-m", "aura_actors", "serve", "--role", "worker"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2 and "need --redis" in done.stderr, done.stderr
