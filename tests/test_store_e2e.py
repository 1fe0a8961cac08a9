"""Durability from outside (contract sections 1, 3 and 7), against real server processes.

- Two servers on one data dir: the second exits 1 naming the dir and the holder.
- The crash suite: SIGKILL at random moments, then the invariants of section 7.
  ``AURA_CRASH_TRIALS`` sets the number of kills (default 5; the nightly run uses
  ``AURA_CRASH_TRIALS=50``); each run prints its seed, and ``AURA_CRASH_SEED=<n>``
  replays the same random choices (the kill moments themselves depend on the machine).
- Storage failure on a real, small tmpfs (skipped, with the reason, where mounting
  is refused): 503 ``storage_unavailable`` and health ``degraded`` while the disk is
  full, recovery without a restart, and a SIGTERM that cannot store what it
  acknowledged exits 1.
- Artifacts: resolved at serve time, nothing outside the job's folder, private.
- DELETE removes the files; retry makes a new job with ``retryOf``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support.crash import (
    Ledger,
    Stored,
    check_left_behind,
    check_restart,
    read_redis_store,
    read_store,
    run_workload,
)
from support.redis import private_redis
from support.servers import ServerProcess, server_process
from support.streams import assert_strictly_increasing, create_job, open_sse, read_sse

from aura_actors.protocol import ErrorCode

QUICK = {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 3, "tickSeconds": 0}}
#: A job that sits in its first tick until cancelled (or the server stops).
WAITING = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}
FAILING = {
    "pipeline": "synthetic",
    "params": {"stages": 2, "ticks": 2, "tickSeconds": 0, "failAt": {"stage": 1, "tick": 0}},
}
#: A job that reports progress every 10 ms for minutes.
STEADY = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 100000, "tickSeconds": 0.01}}
VIDEO = {"pipeline": "video", "params": {"topic": "Tides", "durationSeconds": 5, "speed": 1000}}

CRASH_TRIALS = int(os.environ.get("AURA_CRASH_TRIALS") or 5)


async def wait_running(client: httpx.AsyncClient, job_id: str) -> None:
    """Read the job's stream up to its first stage starting."""
    with trio.fail_after(30):
        async with open_sse(client, f"/api/jobs/{job_id}/events") as stream:
            await stream.until(lambda event: event.event == "step-status")


async def run_to_end(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    """Follow the job's stream to its end; its snapshot then."""
    with trio.fail_after(60):
        events = await read_sse(client, f"/api/jobs/{job_id}/events")
    assert events[-1].is_terminal, events[-1]
    response = await client.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200
    snapshot: dict[str, Any] = response.json()
    return snapshot


async def stop(server: ServerProcess) -> int:
    server.send_signal(signal.SIGTERM)
    with trio.fail_after(30):
        return await server.wait()


def serve_command(data_dir: Path) -> list[str]:
    serve = [sys.executable, "-m", "aura_actors", "serve", "--host", "127.0.0.1", "--port", "0"]
    return [*serve, "--data-dir", str(data_dir)]


def files_of(data_dir: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file of the data dir: size, mtime and content (but the shared-memory index,
    which readers touch, only by name)."""
    found: dict[str, tuple[int, int, bytes]] = {}
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(data_dir))
        if name.endswith("-shm"):
            found[name] = (0, 0, b"")
            continue
        stat = path.stat()
        found[name] = (stat.st_size, stat.st_mtime_ns, path.read_bytes())
    return found


# -- (a) one server per data dir -------------------------------------------------------------


async def test_a_second_server_on_the_same_data_dir_exits_1_and_changes_nothing(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with server_process(data_dir) as first:
        async with httpx.AsyncClient(base_url=first.url) as client:
            done = await run_to_end(client, await create_job(client, QUICK))
            waiting_id = await create_job(client, WAITING)
            await wait_running(client, waiting_id)
            before = files_of(data_dir)
            assert "jobs.sqlite3" in before and "aura.lock" in before

            with trio.fail_after(10):  # "within a few seconds"
                second = await trio.run_process(
                    serve_command(data_dir), capture_stdout=True, capture_stderr=True, check=False
                )
            assert second.returncode == 1, second.stderr.decode()
            message = second.stderr.decode()
            assert str(data_dir) in message and f"process {first.pid}" in message, message
            assert "Traceback" not in message and "listening" not in second.stdout.decode()
            assert files_of(data_dir) == before

            # The first server goes on as before.
            assert (await client.get(f"/api/jobs/{done['id']}")).json() == done
            waiting = (await client.get(f"/api/jobs/{waiting_id}")).json()
            assert waiting["status"] == "Running"
            assert (await client.post(f"/api/jobs/{waiting_id}/cancel")).status_code == 202
            assert (await run_to_end(client, waiting_id))["status"] == "Canceled"
            assert (await run_to_end(client, await create_job(client, QUICK)))["status"] == "Done"
        assert await stop(first) == 0


# -- (b) the crash suite -----------------------------------------------------------------------


@pytest.mark.timeout(120 + 40 * CRASH_TRIALS)
@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_crash_suite_sigkill_at_random_moments(tmp_path: Path, store: str) -> None:
    """SIGKILL across submit, progress and completion; after each restart, section 7 holds:
    every 202'd job is there, every terminal event a client saw is the stored state, the
    histories replay with the same ids, resumes are exact, new ids exceed all old ones,
    Queued jobs run and Running ones end Failed ``interrupted``. On the embedded store,
    and with ``--redis`` on a private redis-server (which stays up: the server dies).

    ``AURA_CRASH_TRIALS=50`` for the nightly-sized run; ``AURA_CRASH_SEED`` replays one.
    """
    async with contextlib.AsyncExitStack() as stack:
        args = ["--max-concurrent-jobs", "2"]
        if store == "redis":
            redis = await stack.enter_async_context(private_redis(tmp_path / "redis"))
            # One node name across the restarts: the node takes back what it had claimed.
            args += ["--redis", redis.url, "--node-name", "crash"]

            async def read() -> Stored:
                return await read_redis_store(redis.url, "aura:")
        else:

            async def read() -> Stored:
                return read_store(tmp_path / "data")

        await _crash_suite(tmp_path / "data", args, read)


async def _crash_suite(
    data_dir: Path, args: list[str], read: Callable[[], Awaitable[Stored]]
) -> None:
    seed = int(os.environ.get("AURA_CRASH_SEED") or random.randrange(2**32))
    print(f"crash suite: AURA_CRASH_SEED={seed} AURA_CRASH_TRIALS={CRASH_TRIALS}")
    ledger = Ledger()
    stored: Stored | None = None
    moments: list[str] = []
    for trial in range(CRASH_TRIALS + 1):
        rng = random.Random(f"{seed}-{trial}")
        try:
            async with server_process(data_dir, args) as server:
                if stored is not None:
                    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                        await check_restart(client, ledger, stored, rng, trial - 1)
                if trial == CRASH_TRIALS:
                    assert await stop(server) == 0
                    break
                with trio.fail_after(120):
                    killer = await run_workload(server, ledger, rng, trial)
                    assert await server.wait() == -signal.SIGKILL
                moments.append(str(killer))
            stored = await read()
            check_left_behind(ledger, stored)
        except BaseException as exc:
            exc.add_note(
                f"crash suite AURA_CRASH_SEED={seed}, trial {trial} of {CRASH_TRIALS}; "
                f"kills so far: {moments}"
            )
            raise
    print(
        f"crash suite: {len(ledger.acknowledged)} jobs acknowledged; found after kills: "
        f"{ledger.found}; terminal events checked: {ledger.terminals_checked}; kills: {moments}"
    )
    assert len(moments) == CRASH_TRIALS


# -- (c) a real full disk ------------------------------------------------------------------------


@contextmanager
def small_tmpfs(path: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (skips the test if mounting is refused)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> int:
    """Write ``path`` until the filesystem has not one byte left; how many were written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 16, 1 << 12, 1 << 8, 1):
            block = b"\0" * size
            while True:
                try:
                    written += os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return written


async def health(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/api/health")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def wait_health(client: httpx.AsyncClient, status: int, *, within: float = 30) -> None:
    """Poll health (nothing streams it) until it answers ``status``."""
    with trio.fail_after(within):
        while (await health(client))[0] != status:  # noqa: ASYNC110 - nothing to wait on
            await trio.sleep(0.05)


async def post_until_refused(client: httpx.AsyncClient, acknowledged: list[str]) -> None:
    """POST jobs until one is refused; each must be 202 (kept) or 503 storage_unavailable."""
    with trio.fail_after(60):
        for _ in range(1000):
            response = await client.post("/api/jobs", json=QUICK)
            if response.status_code == 202:
                acknowledged.append(response.json()["id"])
                continue
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == ErrorCode.STORAGE_UNAVAILABLE
            return
    raise AssertionError("a full disk never refused a job")


async def test_a_full_disk_refuses_jobs_loudly_and_the_server_recovers_by_itself(
    tmp_path: Path,
) -> None:
    """A job runs through it all: its events wait (in order, none lost) while the disk is
    full, and the server's own retries notice when there is space again."""
    with small_tmpfs(tmp_path / "disk") as data_dir:
        filler = data_dir / "filler"
        acknowledged: list[str] = []
        async with server_process(data_dir) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                for _ in range(3):
                    acknowledged.append(await create_job(client, QUICK))
                finished = {job_id: await run_to_end(client, job_id) for job_id in acknowledged}
                assert (await health(client))[0] == 200
                steady = await create_job(client, STEADY)
                async with open_sse(client, f"/api/jobs/{steady}/events") as stream:
                    await stream.until(lambda event: event.event == "step-progress")

                    fill(filler)
                    await post_until_refused(client, acknowledged)
                    code, body = await health(client)
                    assert code == 503 and body["status"] == "degraded", body
                    assert body["storage"]["ok"] is False and body["storage"]["problem"]
                    again = await client.post("/api/jobs", json=QUICK)
                    assert again.status_code == 503
                    assert again.json()["error"]["code"] == ErrorCode.STORAGE_UNAVAILABLE
                    # Reads of what is stored go on meanwhile.
                    for job_id, snapshot in finished.items():
                        assert (await client.get(f"/api/jobs/{job_id}")).json() == snapshot

                    filler.unlink()  # space again: no restart, no request needed
                    await wait_health(client, 200)
                    assert (await health(client))[1]["status"] == "ok"
                    fresh = await create_job(client, QUICK)
                    assert (await run_to_end(client, fresh))["status"] == "Done"
                    assert (await client.post(f"/api/jobs/{steady}/cancel")).status_code == 202
                    await stream.rest()
                    live = stream.received
                for job_id in acknowledged:
                    assert (await run_to_end(client, job_id))["status"] == "Done", job_id
                # The running job's stream went through without a gap: what was stored is
                # what it got (but for progress a reader may skip).
                stored = await read_sse(client, f"/api/jobs/{steady}/events")
                assert_strictly_increasing(live)
                assert [e.triple() for e in live if e.event != "step-progress"] == [
                    e.triple() for e in stored if e.event != "step-progress"
                ]
                assert live[-1].event == "job-cancelled"
            assert await stop(server) == 0
        # ... and all of it is stored: a new process finds every acknowledged job.
        async with server_process(data_dir) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                for job_id in [*acknowledged, fresh]:
                    response = await client.get(f"/api/jobs/{job_id}")
                    assert response.status_code == 200 and response.json()["status"] == "Done"
                for job_id, snapshot in finished.items():
                    assert (await client.get(f"/api/jobs/{job_id}")).json() == snapshot
                assert (await client.get(f"/api/jobs/{steady}")).json()["status"] == "Canceled"
            assert await stop(server) == 0


async def test_an_idle_server_recovers_once_the_disk_has_space_again(tmp_path: Path) -> None:
    """Nothing left to store once the refused job is dropped: the server still notices,
    by itself, that the disk has space again."""
    with small_tmpfs(tmp_path / "disk") as data_dir:
        async with server_process(data_dir) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                done = await run_to_end(client, await create_job(client, QUICK))
                fill(data_dir / "filler")
                await post_until_refused(client, [])
                (data_dir / "filler").unlink()
                await wait_health(client, 200, within=15)  # retries back off to 5 s at most
                assert (await run_to_end(client, await create_job(client, QUICK)))["status"] == (
                    "Done"
                )
                assert (await client.get(f"/api/jobs/{done['id']}")).json() == done
            assert await stop(server) == 0


async def test_sigterm_while_the_disk_is_full_exits_1_and_says_what_was_lost(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "disk") as data_dir:
        async with server_process(data_dir) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                running = await create_job(client, STEADY)
                await wait_running(client, running)
                fill(data_dir / "filler")
                await wait_health(client, 503)  # the job's progress cannot be stored
                assert (await health(client))[1]["status"] == "degraded"
            server.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                code = await server.wait()
            assert code == 1, server.stderr.decode()[-6000:]
            assert "acknowledged records could not be written" in server.stderr.decode()
        (data_dir / "filler").unlink()
        # What was stored before the disk filled is there; the job was interrupted.
        async with server_process(data_dir) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                snapshot = await run_to_end(client, running)
                assert snapshot["status"] == "Failed"
                assert snapshot["error"]["errors"][0]["code"] == "interrupted"
            assert await stop(server) == 0


# -- (d) artifacts -----------------------------------------------------------------------------


async def test_artifacts_are_resolved_when_served_and_never_outside_the_job_folder(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    outside = tmp_path / "outside"
    outside.mkdir()
    async with server_process(data_dir) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            job = await run_to_end(client, await create_job(client, VIDEO))
            assert job["status"] == "Done" and job["artifacts"]
            artifact = job["artifacts"][0]
            url = f"/api/jobs/{job['id']}/artifacts/{artifact['name']}"
            served = await client.get(url)
            assert served.status_code == 200 and len(served.content) == artifact["sizeBytes"]
            cache = served.headers["cache-control"]
            assert "private" in cache and "public" not in cache

            # A symlink in place of the file, to a file outside.
            path = data_dir / artifact["path"]
            original = path.read_bytes()
            path.unlink()
            path.symlink_to("/etc/passwd")
            refused = await client.get(url)
            assert refused.status_code == 404 and b"root:" not in refused.content
            assert refused.json()["error"]["code"] == ErrorCode.ARTIFACT_NOT_FOUND

            # The job's folder replaced by a symlink to a folder outside with that file.
            (outside / path.name).write_bytes(b"not yours")
            folder = data_dir / "artifacts" / job["id"]
            shutil.move(folder, tmp_path / "moved")
            folder.symlink_to(outside)
            refused = await client.get(url)
            assert refused.status_code == 404 and b"not yours" not in refused.content
            folder.unlink()
            shutil.move(tmp_path / "moved", folder)
            path.unlink()
            path.write_bytes(original)
            assert (await client.get(url)).content == original
        assert await stop(server) == 0

    # A tampered record (written while the server is stopped).
    tampered = [
        {"name": "abs", "path": "/etc/passwd", "sizeBytes": 1, "mimeType": "text/plain"},
        {
            "name": "dots",
            "path": f"artifacts/{job['id']}/../../../../../../../../etc/passwd",
            "sizeBytes": 1,
            "mimeType": "text/plain",
        },
        {"name": "sibling", "path": "../outside/x", "sizeBytes": 1, "mimeType": "text/plain"},
    ]
    (outside / "x").write_bytes(b"not yours")
    _rewrite_snapshot(data_dir, job["id"], artifacts=[*job["artifacts"], *tampered])
    async with server_process(data_dir) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for item in tampered:
                refused = await client.get(f"/api/jobs/{job['id']}/artifacts/{item['name']}")
                assert refused.status_code == 404, item
                assert b"root:" not in refused.content and b"not yours" not in refused.content
            assert (await client.get(url)).content == original  # the real one still served
        assert await stop(server) == 0


def _rewrite_snapshot(data_dir: Path, job_id: str, **changes: Any) -> None:
    connection = sqlite3.connect(data_dir / "jobs.sqlite3")
    try:
        with connection:
            (text,) = connection.execute(
                "SELECT snapshot FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            connection.execute(
                "UPDATE jobs SET snapshot = ? WHERE id = ?",
                (json.dumps({**json.loads(text), **changes}), job_id),
            )
    finally:
        connection.close()


# -- (e) delete and retry ------------------------------------------------------------------------


async def test_delete_removes_the_files_and_retry_makes_a_new_job(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with server_process(data_dir) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            video = await run_to_end(client, await create_job(client, VIDEO))
            folder = data_dir / "artifacts" / video["id"]
            assert folder.is_dir() and any(folder.iterdir())
            waiting_id = await create_job(client, WAITING)
            await wait_running(client, waiting_id)

            live = await client.delete(f"/api/jobs/{waiting_id}")
            assert live.status_code == 409
            assert live.json()["error"]["code"] == ErrorCode.JOB_NOT_FINISHED
            deleted = await client.delete(f"/api/jobs/{video['id']}")
            assert deleted.status_code == 204 and deleted.content == b""
            assert not folder.exists()
            for path in ("", "/events", "/logs", f"/artifacts/{video['artifacts'][0]['name']}"):
                gone = await client.get(f"/api/jobs/{video['id']}{path}")
                assert gone.status_code == 404, path
            assert (await client.delete(f"/api/jobs/{video['id']}")).status_code == 404
            listed = (await client.get("/api/jobs")).json()["jobs"]
            assert video["id"] not in [job["id"] for job in listed]

            failed = await run_to_end(client, await create_job(client, FAILING))
            assert failed["status"] == "Failed"
            retried = await client.post(f"/api/jobs/{failed['id']}/retry")
            assert retried.status_code == 202, retried.text
            body = retried.json()
            assert retried.headers["location"] == f"/api/jobs/{body['id']}"
            assert body["retryOf"] == failed["id"] and body["id"] != failed["id"]
            assert (body["pipeline"], body["params"]) == (failed["pipeline"], failed["params"])
            assert body["attempt"] == 1
            assert (await run_to_end(client, body["id"]))["retryOf"] == failed["id"]
            done = await run_to_end(client, await create_job(client, QUICK))
            not_retryable = await client.post(f"/api/jobs/{done['id']}/retry")
            assert not_retryable.status_code == 409
            assert not_retryable.json()["error"]["code"] == ErrorCode.JOB_NOT_RETRYABLE
            assert (await client.post("/api/jobs/nope/retry")).status_code == 404
            await client.post(f"/api/jobs/{waiting_id}/cancel")
            assert (await run_to_end(client, waiting_id))["status"] == "Canceled"
            canceled_retry = await client.post(f"/api/jobs/{waiting_id}/retry")
            assert canceled_retry.status_code == 202
            assert canceled_retry.json()["retryOf"] == waiting_id
        assert await stop(server) == 0
    async with server_process(data_dir) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.get(f"/api/jobs/{video['id']}")).status_code == 404
            assert (await client.get(f"/api/jobs/{body['id']}")).json()["retryOf"] == failed["id"]
        assert await stop(server) == 0
