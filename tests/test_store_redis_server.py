"""A runtime and a real server on Redis (``--redis``), against private ``redis-server``s.

- The runtime refuses jobs (``StorageFailing``) while Redis is down and goes on by
  itself once it is back, with nothing acknowledged lost.
- ``aura-actors serve --redis``: SIGKILL right after a 202, restart, the jobs are
  there and recovered by the rules of contract section 7; resumes with
  ``Last-Event-ID`` across the restart are exact.
- Without ``--redis`` nothing imports coredis; the flag and its variable exist.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support.redis import (
    SHARED_URL,
    private_redis,
)
from support.servers import server_process
from support.streams import Ev, assert_strictly_increasing, create_job, open_sse, read_sse

from aura_actors.pipelines import default_pipelines
from aura_actors.runtime import (
    DataDirLocked,
    Event,
    EventType,
    JobStatus,
    RuntimeConfig,
    StorageFailing,
    open_runtime,
)

QUICK = {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 3, "tickSeconds": 0}}
#: A job that sits in its first tick until cancelled (or the server stops).
WAITING = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}


async def _run_to_end(runtime: Any, job_id: str) -> list[Any]:
    with trio.fail_after(30):
        with await runtime.subscribe_job(job_id) as subscription:
            return [event async for event in subscription]


async def test_the_runtime_refuses_jobs_while_redis_is_down_and_goes_on_once_back(
    tmp_path: Path,
) -> None:
    params = {"stages": 1, "ticks": 2, "tickSeconds": 0}
    async with private_redis(tmp_path / "redis") as server:
        config = RuntimeConfig(persist_jobs=True, data_dir=tmp_path / "data", redis_url=server.url)
        async with open_runtime(config, default_pipelines()) as runtime:
            first = await runtime.submit("synthetic", params)
            assert (await _run_to_end(runtime, first.id))[-1].type is EventType.JOB_COMPLETED

            await server.stop()
            with pytest.raises(StorageFailing, match="Redis"):
                await runtime.submit("synthetic", params)
            assert runtime.broadcaster.storage_error is not None

            await server.start()
            # The broadcaster's probes (backing off to 5 s) notice by themselves.
            with trio.fail_after(30):
                while runtime.broadcaster.storage_error is not None:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            second = await runtime.submit("synthetic", params)
            assert (await _run_to_end(runtime, second.id))[-1].type is EventType.JOB_COMPLETED
            stored = await runtime.storage.get(first.id)
            assert stored is not None and stored.status is JobStatus.DONE
            assert await runtime.storage.count_jobs() == {("Done", "synthetic"): 2}


def _keys(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(event.id, event.type, event.data) for event in events]


async def test_replays_after_a_restart_are_identical_and_resumes_exact(
    tmp_path: Path, prefix: str
) -> None:
    """Through the runtime: a job's stream and the all-jobs stream, read back from Redis
    by a new runtime, give the same events with the same ids, from every id."""
    config = RuntimeConfig(
        persist_jobs=True, data_dir=tmp_path, redis_url=SHARED_URL, redis_prefix=prefix
    )
    params: dict[str, dict[str, Any]] = {
        "done": {"stages": 3, "ticks": 4, "tickSeconds": 0, "warnAt": {"stage": 1, "tick": 2}},
        "failed": {"stages": 2, "ticks": 3, "tickSeconds": 0, "failAt": {"stage": 1, "tick": 1}},
    }
    async with open_runtime(config, default_pipelines()) as runtime:
        ids = {name: (await runtime.submit("synthetic", p)).id for name, p in params.items()}
        for job_id in ids.values():  # to their ends (a live read may see more progress)
            await _run_to_end(runtime, job_id)
        before = {name: await _run_to_end(runtime, job_id) for name, job_id in ids.items()}
    assert [before[name][-1].type for name in ids] == [
        EventType.JOB_COMPLETED,
        EventType.JOB_FAILED,
    ]
    async with open_runtime(config, default_pipelines()) as runtime:
        for name, job_id in ids.items():
            replay = await _run_to_end(runtime, job_id)
            assert _keys(replay) == _keys(before[name]), name
            for index, event in enumerate(replay):
                with await runtime.subscribe_job(job_id, after=event.id) as subscription:
                    assert _keys([e async for e in subscription]) == _keys(replay[index + 1 :])
        merged = sorted((e for name in ids for e in before[name]), key=lambda e: e.id or (0, 0))
        for start in (merged[0], merged[len(merged) // 2], merged[-2]):
            assert start.id is not None
            expected = [e for e in merged if e.id is not None and e.id > start.id]
            with trio.fail_after(10):
                with await runtime.subscribe_all(owner=None, after=start.id) as subscription:
                    got = [await subscription.receive() for _ in expected]
                    with pytest.raises(trio.WouldBlock):
                        subscription.receive_nowait()
            assert _keys(got) == _keys(expected)


def _after(events: list[Ev], last: str) -> list[Ev]:
    cut = Ev(last, "", {}).key
    return [event for event in events if event.id is not None and event.key > cut]


async def test_serve_with_redis_keeps_what_it_acknowledged_across_sigkill(tmp_path: Path) -> None:
    """A running job and a queued one, SIGKILL right after the second 202: after a restart
    under the same node name the running one ends Failed ``interrupted`` (the node takes
    back what it had claimed), the queued one runs, and every resume with
    ``Last-Event-ID`` gives the same ids, nothing lost or repeated."""
    data_dir = tmp_path / "data"
    async with private_redis(tmp_path / "redis") as redis:
        args = ["--redis", redis.url, "--redis-prefix", "e2e", "--max-concurrent-jobs", "1"]
        args += ["--node-name", "solo"]
        async with server_process(data_dir, args) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                running = await create_job(client, WAITING)
                with trio.fail_after(30):
                    async with open_sse(client, f"/api/jobs/{running}/events") as stream:
                        await stream.until(lambda event: event.event == "step-status")
                        seen = list(stream.received)
                response = await client.post("/api/jobs", json=QUICK)
                assert response.status_code == 202
                server.send_signal(signal.SIGKILL)
            queued = response.json()
            assert await server.wait() == -signal.SIGKILL
        assert not (data_dir / "jobs.sqlite3").exists()  # the store is Redis

        async with server_process(data_dir, args) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                path = f"/api/jobs/{running}/events"
                resumed = await read_sse(client, path, headers={"Last-Event-ID": seen[-1].id or ""})
                assert [e.event for e in resumed] == ["job-status", "job-failed"], resumed
                assert resumed[1].data["errors"][0]["code"] == "interrupted"
                history = await read_sse(client, path)
                assert [e.triple() for e in history] == [e.triple() for e in seen + resumed]
                assert_strictly_increasing(history)

                queued_events = await read_sse(client, f"/api/jobs/{queued['id']}/events")
                assert queued_events[0].id == queued["lastEventId"]  # its Queued, from before
                assert queued_events[1].data["status"] == "Running"
                assert queued_events[-1].event == "job-completed"
                # Every id after the restart is greater than every id before the kill.
                newest_before = Ev(queued["lastEventId"], "", {}).key
                assert all(e.key > newest_before for e in [*resumed, *queued_events[1:]])
                replay = await read_sse(client, f"/api/jobs/{queued['id']}/events")
                for event in replay[:-1]:
                    assert event.id is not None
                    again = await read_sse(
                        client,
                        f"/api/jobs/{queued['id']}/events",
                        headers={"Last-Event-ID": event.id},
                    )
                    assert [e.triple() for e in again] == [
                        e.triple() for e in _after(replay, event.id)
                    ]
                listed = (await client.get("/api/jobs")).json()["jobs"]
                assert [job["id"] for job in listed] == [queued["id"], running]
                assert [job["status"] for job in listed] == ["Done", "Failed"]
            server.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                assert await server.wait() == 0


def test_without_redis_nothing_imports_coredis() -> None:
    code = """
import sys
import aura_actors.web, aura_actors.cli
from aura_actors.cli import build_parser
from aura_actors.runtime import default_storage
from aura_actors.web import settings_from_args
settings = settings_from_args(build_parser().parse_args(["serve"]), {})
storage = default_storage(settings.runtime)
print(json.dumps([type(storage).__name__, "coredis" in sys.modules]))
""".replace("import sys", "import json, sys")
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == ["SqliteStorage", False]


def test_the_redis_flags_come_from_the_settings() -> None:
    from aura_actors.cli import build_parser
    from aura_actors.web import settings_from_args

    help_text = subprocess.run(
        [sys.executable, "-m", "aura_actors", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "--redis URL" in help_text and "AURA_REDIS)" in help_text
    assert "--redis-prefix P" in help_text and "AURA_REDIS_PREFIX" in help_text
    parser = build_parser()
    flagged = settings_from_args(parser.parse_args(["serve", "--redis", "redis://h:1/2"]), {})
    assert flagged.runtime.redis_url == "redis://h:1/2"
    assert flagged.runtime.redis_prefix == "aura"
    env = {"AURA_REDIS": "redis://e:3/0", "AURA_REDIS_PREFIX": "svc"}
    from_env = settings_from_args(parser.parse_args(["serve"]), env)
    assert (from_env.runtime.redis_url, from_env.runtime.redis_prefix) == ("redis://e:3/0", "svc")
    assert settings_from_args(parser.parse_args(["serve"]), {}).runtime.redis_url is None


def test_serve_with_an_unreachable_redis_exits_1_saying_so(tmp_path: Path) -> None:
    from support.redis import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    serve = [sys.executable, "-m", "aura_actors", "serve", "--port", "0", "--redis", url]
    done = subprocess.run(
        [*serve, "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Redis: cannot open the store" in done.stderr and "Traceback" not in done.stderr
    assert "listening" not in done.stdout


async def _health(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/api/health")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_serve_while_redis_is_down_answers_503_and_recovers_by_itself(
    tmp_path: Path,
) -> None:
    async with private_redis(tmp_path / "redis") as redis:
        args = ["--redis", redis.url]
        async with server_process(tmp_path / "data", args) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                done = await create_job(client, QUICK)
                await read_sse(client, f"/api/jobs/{done}/events")
                await redis.stop()

                refused = await client.post("/api/jobs", json=QUICK)
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"]["code"] == "storage_unavailable"
                code, body = await _health(client)
                assert code == 503 and body["status"] == "degraded", body
                assert "Redis" in body["storage"]["problem"]
                unreadable = await client.get(f"/api/jobs/{done}")
                assert unreadable.status_code == 503, unreadable.text
                assert unreadable.json()["error"]["code"] == "storage_unavailable"

                await redis.start()
                with trio.fail_after(30):  # the server's own retries notice (5 s at most)
                    while (await _health(client))[0] != 200:  # noqa: ASYNC110 - polled
                        await trio.sleep(0.05)
                fresh = await create_job(client, QUICK)
                assert (await read_sse(client, f"/api/jobs/{fresh}/events"))[-1].is_terminal
                assert (await client.get(f"/api/jobs/{done}")).json()["status"] == "Done"
            server.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                assert await server.wait() == 0


async def test_a_second_runtime_on_the_data_dir_is_refused_plainly_with_redis_too(
    tmp_path: Path, prefix: str
) -> None:
    """Two runtimes of one process share its default node name, and the data dir's lock
    is per node name with Redis: the second is refused; what leaves the Redis
    connection's block is the error itself, not an exception group around it."""
    config = RuntimeConfig(
        persist_jobs=True, data_dir=tmp_path, redis_url=SHARED_URL, redis_prefix=prefix
    )
    async with open_runtime(config, default_pipelines()) as runtime:
        job = await runtime.submit("synthetic", {"stages": 1, "ticks": 1, "tickSeconds": 0})
        with pytest.raises(DataDirLocked, match=str(tmp_path)):
            async with open_runtime(config, default_pipelines()):
                pass  # never reached
        assert (await _run_to_end(runtime, job.id))[-1].type is EventType.JOB_COMPLETED
