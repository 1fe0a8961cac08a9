"""The client commands run as real processes (``python -m aura_actors ...``) against a real server.

Exit codes: 0 done, 1 failed (or refused), 2 usage, 3 canceled, 4 connection
lost for good, 130 stopped following on Ctrl-C. Output here is not a terminal,
so it is plain lines (or ``--json``).
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support.cli import cli_env, run_cli, run_many, start_cli
from support.servers import InProcessServer, run_server, server_process, write_tokens
from support.streams import read_sse

from aura_actors.web import ServerSettings

QUICK: dict[str, Any] = {"stages": 2, "ticks": 3, "tickSeconds": 0}
#: A job that sits in its first tick until cancelled.
WAITING: dict[str, Any] = {"stages": 1, "ticks": 1, "tickSeconds": 600}
#: A job that reports progress every 20 ms for a minute.
TICKING: dict[str, Any] = {"stages": 1, "ticks": 3000, "tickSeconds": 0.02}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    async with run_server(ServerSettings.of(max_concurrent_jobs=8), data_dir=tmp_path) as server:
        yield server


@pytest.fixture
async def http(server: InProcessServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def create(http: httpx.AsyncClient, params: dict[str, Any]) -> str:
    created = await http.post("/api/jobs", json={"pipeline": "synthetic", "params": params})
    assert created.status_code == 202, created.text
    job_id: str = created.json()["id"]
    return job_id


async def status_of(http: httpx.AsyncClient, job_id: str) -> str:
    status: str = (await http.get(f"/api/jobs/{job_id}")).json()["status"]
    return status


# -- submit and follow --------------------------------------------------------------------


async def test_submit_prints_the_new_jobs_id(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    plain, as_json = await run_many(
        ["submit", "synthetic", "--param", "stages=1", "--params", '{"ticks": 2}'],
        ["submit", "video", "--topic", "Tides", "--duration", "6", "--speed", "500", "--json"],
        url=server.url,
    )
    assert plain.code == 0, plain
    job_id = plain.out.strip()
    job = (await http.get(f"/api/jobs/{job_id}")).json()
    assert job["params"]["stages"] == 1 and job["params"]["ticks"] == 2
    assert as_json.code == 0, as_json
    snapshot = json.loads(as_json.out)
    assert snapshot["pipeline"] == "video"
    assert snapshot["params"] == {"topic": "Tides", "durationSeconds": 6, "speed": 500}


async def test_submit_video_follow_shows_progress_and_the_artifacts(
    server: InProcessServer, tmp_path: Path
) -> None:
    result = await run_cli(
        "submit",
        "video",
        "--topic",
        "Tides",
        "--duration",
        "12",
        "--speed",
        "100",
        "--follow",
        url=server.url,
    )
    assert result.code == 0, result
    lines = result.lines
    job_id = lines[0].removeprefix("submitted job ")
    assert lines[1] == f"following job {job_id} (video)"
    assert f"job {job_id}: Queued" in lines and f"job {job_id}: Done" in lines
    for number, stage in enumerate(["Script", "Voice", "Visuals", "Composition", "Rendering"], 1):
        assert f"stage {number}/5 {stage}: started" in lines
        assert f"stage {number}/5 {stage}: completed" in lines
    progress = [line for line in lines if "% overall" in line]
    assert progress and all("% of stage" in line and "ETA " in line for line in progress)
    assert any(re.search(r"item \d+/\d+", line) for line in progress)
    assert any(line.startswith("Done in ") for line in lines)
    artifacts = [line for line in lines if line.startswith("artifact ")]
    names = [line.split()[1] for line in artifacts]
    assert names == ["video.mp4", "thumbnail.jpg", "voice.wav", "script.txt"]
    for line in artifacts:
        assert f"{server.url}/api/jobs/{job_id}/artifacts/" in line
        assert re.search(r"\((\d+ B|\d+\.\d (kB|MB|GB)), ", line), line


async def test_follow_json_prints_each_event_as_one_json_line(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http, QUICK)
    result = await run_cli("follow", job_id, "--json", url=server.url)
    assert result.code == 0, result
    events = [json.loads(line) for line in result.lines]
    assert all(set(event) == {"id", "event", "data"} for event in events)
    reference = await read_sse(http, f"/api/jobs/{job_id}/events")
    assert [(e["id"], e["event"], e["data"]) for e in events] == [
        (e.id, e.event, e.data) for e in reference
    ]
    assert events[-1]["event"] == "job-completed"


async def test_a_failed_job_exits_1_with_the_error_and_its_remediation(
    server: InProcessServer,
) -> None:
    params = json.dumps(
        {**QUICK, "failAt": {"stage": 1, "tick": 1}, "warnAt": {"stage": 0, "tick": 0}}
    )
    result = await run_cli("submit", "synthetic", "--params", params, "--follow", url=server.url)
    assert result.code == 1, result
    assert (
        "warning [stage-1]: synthetic warning at stage-1, tick 1 (warnAt stage 0, tick 0)"
        in result.lines
    )
    assert (
        "Failed in stage stage-2: synthetic failure at stage-2, tick 2 (failAt stage 1, tick 1)"
        in result.lines
    )
    assert (
        "error synthetic_failure: synthetic failure at stage-2, tick 2 (failAt stage 1, tick 1)"
        in result.lines
    )
    assert any(line.strip().startswith("remediation: remove failAt") for line in result.lines)


# -- cancel and jobs ----------------------------------------------------------------------


async def test_cancel_then_follow_exits_3_and_a_second_cancel_exits_1(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http, WAITING)
    cancelled = await run_cli("cancel", job_id, url=server.url)
    assert cancelled.code == 0, cancelled
    assert cancelled.out.startswith(f"cancel requested for job {job_id}")
    followed, again = await run_many(["follow", job_id], ["cancel", job_id], url=server.url)
    assert followed.code == 3, followed
    assert "Canceled during stage stage-1: canceled by user" in followed.lines
    assert again.code == 1, again
    assert f"job {job_id} already ended: Canceled" in again.err
    assert await status_of(http, job_id) == "Canceled"


async def test_jobs_lists_newest_first_with_filters_pages_and_json(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    done = [await create(http, QUICK) for _ in range(2)]
    for job_id in done:
        await read_sse(http, f"/api/jobs/{job_id}/events")
    waiting = await create(http, WAITING)
    listed, running, one, as_json, paged = await run_many(
        ["jobs"],
        ["jobs", "--status", "running"],
        ["jobs", "--limit", "1"],
        ["jobs", "--json"],
        ["jobs", "--all", "--limit", "1"],
        url=server.url,
    )
    for result in (listed, running, one, as_json, paged):
        assert result.code == 0, result
    rows = [line.split("\t") for line in listed.lines]
    assert [row[0] for row in rows] == [waiting, *done[::-1]]
    assert [row[1] for row in rows] == ["Running", "Done", "Done"]
    assert all(row[2] == "synthetic" for row in rows)
    # The last column is the title: the topic, or the pipeline and its params.
    assert [row[-1] for row in rows] == [
        "synthetic stages=1 ticks=1 tickSeconds=600",
        "synthetic stages=2 ticks=3 tickSeconds=0",
        "synthetic stages=2 ticks=3 tickSeconds=0",
    ]
    assert [line.split("\t")[0] for line in running.lines] == [waiting]
    assert [line.split("\t")[0] for line in one.lines] == [waiting]
    assert [json.loads(line)["id"] for line in as_json.lines] == [waiting, *done[::-1]]
    assert [line.split("\t")[0] for line in paged.lines] == [waiting, *done[::-1]]
    await http.post(f"/api/jobs/{waiting}/cancel")


# -- exit codes for mistakes and lost servers ---------------------------------------------


async def test_usage_errors_exit_2(server: InProcessServer) -> None:
    results = await run_many(
        ["submit", "video"],  # no --topic
        ["submit", "synthetic", "--params", "{not json"],
        ["submit", "synthetic", "--param", "no-equals-sign"],
        ["submit", "synthetic", "--topic", "x"],  # --topic is for video
        ["jobs", "--status", "sleeping"],
        [],  # no command
        # Params the server refuses (422) are a usage error too.
        ["submit", "video", "--topic", "x", "--duration", "1"],
        ["submit", "nonsense"],
        url=server.url,
    )
    for result in results:
        assert result.code == 2, result
    assert "the video pipeline needs --topic" in results[0].err
    assert "params.durationSeconds" in results[-2].err
    assert "422" in results[-1].err


async def test_unknown_jobs_exit_1(server: InProcessServer) -> None:
    followed, cancelled = await run_many(
        ["follow", "no-such-job"], ["cancel", "no-such-job"], url=server.url
    )
    assert (followed.code, cancelled.code) == (1, 1), (followed, cancelled)
    assert "404 job_not_found" in followed.err and "404 job_not_found" in cancelled.err


async def test_no_server_exits_4(tmp_path: Path) -> None:
    async with run_server(data_dir=tmp_path) as server:
        url = server.url  # a port that nothing listens on once this block ends
    listed, followed = await run_many(["jobs"], ["follow", "some-job", "--retries", "0"], url=url)
    assert (listed.code, followed.code) == (4, 4), (listed, followed)
    assert "connection lost" in followed.err


async def test_server_killed_while_following_exits_4(tmp_path: Path) -> None:
    async with server_process(tmp_path) as server, httpx.AsyncClient(base_url=server.url) as http:
        job_id = await create(http, TICKING)
        follower = await start_cli("follow", job_id, "--retries", "1", "--url", server.url)
        with trio.fail_after(20):
            await follower.wait_for_output(r"% overall")
            server.send_signal(signal.SIGKILL)
            code = await follower.finish()
    assert code == 4, (follower.out.decode(), follower.err.decode())
    err = follower.err.decode()
    assert "reconnecting in 1 s (try 1 of 1)" in err  # retry: 1000 ms is the base
    assert "gave up after 1 reconnection try" in err


# -- Ctrl-C -------------------------------------------------------------------------------


async def test_sigint_with_cancel_on_interrupt_cancels_the_job(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http, TICKING)
    follower = await start_cli("follow", job_id, "--cancel-on-interrupt", "--url", server.url)
    with trio.fail_after(20):
        await follower.wait_for_output(r"% overall")
        assert await status_of(http, job_id) == "Running"
        follower.process.send_signal(signal.SIGINT)
        code = await follower.finish()
    assert code == 3, (follower.out.decode(), follower.err.decode())
    assert await status_of(http, job_id) == "Canceled"
    assert "Canceled during stage stage-1: canceled by user" in follower.out.decode()
    assert f"cancelling job {job_id}" in follower.err.decode()


async def test_sigint_without_a_terminal_stops_following_and_the_job_goes_on(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    job_id = await create(http, TICKING)
    follower = await start_cli("follow", job_id, "--url", server.url)
    with trio.fail_after(20):
        await follower.wait_for_output(r"% overall")
        follower.process.send_signal(signal.SIGINT)
        code = await follower.finish()
    assert code == 130, (follower.out.decode(), follower.err.decode())
    assert "stopped following" in follower.err.decode()
    assert await status_of(http, job_id) == "Running"
    await http.post(f"/api/jobs/{job_id}/cancel")


# -- configuration from the environment ---------------------------------------------------


async def test_url_and_token_come_from_the_environment(tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.json", {"secret": "alice"})
    settings = ServerSettings.of(auth_tokens=tokens)
    async with run_server(settings, data_dir=tmp_path / "data") as server:
        with_token = cli_env(AURA_URL=server.url, AURA_TOKEN="secret")
        without = cli_env(AURA_URL=server.url)
        submitted = await run_cli(
            "submit", "synthetic", "--params", json.dumps(QUICK), env=with_token
        )
        assert submitted.code == 0, submitted
        listed = await run_cli("jobs", env=with_token)
        refused = await run_cli("jobs", env=without)
    assert listed.code == 0 and listed.lines[0].startswith(submitted.out.strip())
    assert refused.code == 1 and "401" in refused.err
    # The refusal says how to give a token.
    assert "--token" in refused.err and "AURA_TOKEN" in refused.err
