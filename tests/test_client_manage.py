"""The client's retry, delete and logs calls against the real server (in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from support.servers import InProcessServer, run_server, write_tokens

from aura_actors.client import (
    AuraClient,
    Conflict,
    JobCompletedEvent,
    JobFailedEvent,
    JobLogs,
    JobSnapshot,
    JobStatus,
    LogLine,
    NotFound,
)
from aura_actors.client.sync import SyncClient
from aura_actors.protocol import ErrorCode
from aura_actors.web import ServerSettings

QUICK: dict[str, Any] = {"stages": 2, "ticks": 3, "tickSeconds": 0}
FAILING: dict[str, Any] = {**QUICK, "failAt": {"stage": 1, "tick": 1}}
#: A job that sits in its first tick until cancelled.
WAITING: dict[str, Any] = {"stages": 1, "ticks": 1, "tickSeconds": 600}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    async with run_server(ServerSettings.of(max_concurrent_jobs=8), data_dir=tmp_path) as server:
        yield server


@pytest.fixture
async def client(server: InProcessServer) -> AsyncIterator[AuraClient]:
    async with AuraClient(server.url) as client:
        yield client


async def test_logs_are_typed_lines_of_what_the_job_did(client: AuraClient) -> None:
    with trio.fail_after(10):
        job = await client.create_job("synthetic", FAILING)
        assert isinstance(await client.wait(job.id), JobFailedEvent)
        logs = await client.job_logs(job.id)
    assert isinstance(logs, JobLogs)
    assert all(isinstance(line, LogLine) for line in logs.lines)
    messages = [line.message for line in logs.lines]
    assert messages[0] == "stage-1 started"
    assert "stage-1 completed" in messages and "stage-2 started" in messages
    failure = logs.lines[-1]
    assert failure.level == "error" and failure.stage == "stage-2"
    assert "synthetic failure at stage-2, tick 2 (failAt stage 1, tick 1)" in failure.message
    times = [line.at for line in logs.lines]
    assert times == sorted(times) and all(at.tzinfo is not None for at in times)


async def test_retry_makes_a_new_job_with_the_same_params(client: AuraClient) -> None:
    with trio.fail_after(10):
        failed = await client.create_job("synthetic", FAILING)
        await client.wait(failed.id)
        retried = await client.retry_job(failed.id)
        assert isinstance(retried, JobSnapshot)
        assert retried.id != failed.id and retried.retry_of == failed.id
        assert (retried.pipeline, retried.params) == ("synthetic", FAILING)
        assert retried.attempt == 1
        assert isinstance(await client.wait(retried.id), JobFailedEvent)

        waiting = await client.create_job("synthetic", WAITING)
        await client.cancel_job(waiting.id)
        await client.wait(waiting.id)
        again = await client.retry_job(waiting.id)
        assert again.retry_of == waiting.id and again.params == WAITING
        await client.cancel_job(again.id)

        done = await client.create_job("synthetic", QUICK)
        assert isinstance(await client.wait(done.id), JobCompletedEvent)
        with pytest.raises(Conflict) as not_retryable:
            await client.retry_job(done.id)
        with pytest.raises(NotFound):
            await client.retry_job("no-such-job")
    assert not_retryable.value.status == 409
    assert not_retryable.value.error_code is ErrorCode.JOB_NOT_RETRYABLE


async def test_delete_removes_a_finished_job_and_refuses_a_live_one(client: AuraClient) -> None:
    with trio.fail_after(10):
        live = await client.create_job("synthetic", WAITING)
        with pytest.raises(Conflict) as still_live:
            await client.delete_job(live.id)
        assert (await client.get_job(live.id)).status is JobStatus.RUNNING

        done = await client.create_job("synthetic", QUICK)
        await client.wait(done.id)
        await client.delete_job(done.id)
        for call in (client.get_job, client.job_logs, client.delete_job, client.retry_job):
            with pytest.raises(NotFound):
                await call(done.id)
        listed = [job.id async for job in client.iter_jobs()]
        await client.cancel_job(live.id)
    assert still_live.value.error_code is ErrorCode.JOB_NOT_FINISHED
    assert listed == [live.id]


async def test_another_users_job_cannot_be_retried_deleted_or_read(tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.json", {"tok-a": "alice", "tok-b": "bob"})
    settings = ServerSettings(auth_tokens=tokens)
    async with (
        run_server(settings, data_dir=tmp_path / "data") as server,
        AuraClient(server.url, "tok-a") as alice,
        AuraClient(server.url, "tok-b") as bob,
    ):
        with trio.fail_after(10):
            job = await alice.create_job("synthetic", FAILING)
            await alice.wait(job.id)
            for call in (bob.job_logs, bob.retry_job, bob.delete_job):
                with pytest.raises(NotFound):
                    await call(job.id)
            assert (await alice.job_logs(job.id)).lines
            await alice.delete_job(job.id)


async def test_sync_facade_retries_reads_logs_and_deletes(server: InProcessServer) -> None:
    def script() -> tuple[JobSnapshot, JobLogs, JobSnapshot]:
        client = SyncClient(server.url)
        job = client.create_job("synthetic", FAILING)
        client.follow(job.id)
        logs = client.job_logs(job.id)
        retried = client.retry_job(job.id)
        client.follow(retried.id)
        client.delete_job(job.id)
        with pytest.raises(NotFound):
            client.get_job(job.id)
        return job, logs, retried

    with trio.fail_after(20):
        job, logs, retried = await trio.to_thread.run_sync(script)
    assert logs.lines and logs.lines[-1].level == "error"
    assert retried.retry_of == job.id
