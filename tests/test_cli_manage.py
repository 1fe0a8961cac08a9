"""``retry``, ``delete``, ``logs`` and id prefixes, as real processes against a real server.

Plus the papercuts of the client commands: ``--json --follow`` prints events
(and stops quietly when its reader goes away), titles in ``jobs``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support.cli import CLI, cli_env, run_cli, run_many, start_cli
from support.servers import InProcessServer, run_server
from support.streams import read_sse
from support.terminal import screen_of

from aura_actors.cli._manage import new_log_lines
from aura_actors.protocol import LogLine
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
async def http(server: InProcessServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def create(
    http: httpx.AsyncClient, params: dict[str, Any], pipeline: str = "synthetic"
) -> str:
    created = await http.post("/api/jobs", json={"pipeline": pipeline, "params": params})
    assert created.status_code == 202, created.text
    job_id: str = created.json()["id"]
    return job_id


async def finished(http: httpx.AsyncClient, params: dict[str, Any]) -> str:
    job_id = await create(http, params)
    await read_sse(http, f"/api/jobs/{job_id}/events")
    return job_id


async def snapshot(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    answer = await http.get(f"/api/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def log_text(lines: list[dict[str, Any]]) -> list[str]:
    """How ``aura-actors logs`` prints the lines of ``GET /api/jobs/{id}/logs``."""
    out = []
    for line in lines:
        at = LogLine.model_validate(line).at.astimezone(UTC)
        stage = f" [{line['stage']}]" if line["stage"] else ""
        stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        out.append(f"{stamp} {line['level']:<7}{stage} {line['message']}")
    return out


# -- id prefixes --------------------------------------------------------------------------


async def test_every_command_takes_a_unique_prefix_of_an_id(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    failed = await finished(http, FAILING)
    waiting = await create(http, WAITING)
    followed, logs, cancelled = await run_many(
        ["follow", failed[:8]],
        ["logs", f"#{failed[:8]}"],  # as the page writes it
        ["cancel", waiting[:10]],
        url=server.url,
    )
    assert followed.code == 1 and f"following job {failed} (synthetic)" in followed.lines
    assert logs.code == 0 and any("synthetic failure" in line for line in logs.lines), logs
    assert cancelled.code == 0 and cancelled.out.startswith(f"cancel requested for job {waiting}")
    retried = await run_cli("retry", failed[:6], url=server.url)
    assert retried.code == 0, retried
    assert (await snapshot(http, retried.out.strip()))["retryOf"] == failed
    deleted = await run_cli("delete", failed[:7], "--yes", url=server.url)
    assert deleted.code == 0 and deleted.out == f"deleted job {failed}\n", deleted
    assert (await http.get(f"/api/jobs/{failed}")).status_code == 404


async def test_an_ambiguous_prefix_lists_the_candidates_and_exits_2(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    # Ids are random hex: among 17 jobs two start with the same digit, for sure.
    by_first: dict[str, list[str]] = {}
    while not any(len(ids) > 1 for ids in by_first.values()):
        job_id = await create(http, QUICK)
        by_first.setdefault(job_id[0], []).append(job_id)
    prefix, ids = next((first, ids) for first, ids in by_first.items() if len(ids) > 1)
    results = await run_many(
        ["follow", prefix],
        ["cancel", prefix],
        ["logs", prefix],
        ["delete", prefix, "--yes"],
        url=server.url,
    )
    for result in results:
        assert result.code == 2, result
        assert f"job id '{prefix}' is ambiguous" in result.err
        for job_id in ids:
            assert job_id in result.err
        assert "synthetic stages=2 ticks=3" in result.err  # with their titles
    unknown = await run_cli("logs", "no-such-job", url=server.url)
    assert unknown.code == 1 and "404 job_not_found" in unknown.err


# -- retry --------------------------------------------------------------------------------


async def test_retry_runs_a_failed_job_again_and_refuses_a_done_one(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    failed = await finished(http, FAILING)
    done = await finished(http, QUICK)
    as_json, refused, followed = await run_many(
        ["retry", failed, "--json"],
        ["retry", done],
        ["retry", failed, "--follow"],
        url=server.url,
    )
    assert as_json.code == 0, as_json
    new = json.loads(as_json.out)
    assert new["retryOf"] == failed and new["id"] != failed and new["params"] == FAILING
    assert refused.code == 1, refused
    assert f"job {done} is Done: only Failed or Canceled jobs can be retried" in refused.err
    # --follow follows the new job to its end: it fails again, so exit 1.
    assert followed.code == 1, followed
    assert followed.lines[0].startswith(f"retrying job {failed} as job ")
    again = followed.lines[0].rsplit(" ", 1)[-1]
    assert (await snapshot(http, again))["retryOf"] == failed
    assert (
        "Failed in stage stage-2: synthetic failure at stage-2, tick 2 (failAt stage 1, tick 1)"
        in followed.lines
    )


# -- delete -------------------------------------------------------------------------------


async def test_delete_asks_first_and_refuses_live_jobs(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    done = await finished(http, QUICK)
    live = await create(http, WAITING)
    said_no = await run_cli("delete", done, url=server.url, stdin=b"n\n")
    no_answer = await run_cli("delete", done, url=server.url)  # stdin is empty
    assert (said_no.code, no_answer.code) == (1, 1), (said_no, no_answer)
    assert f"Delete job {done} (synthetic stages=2 ticks=3 tickSeconds=0, Done)?" in said_no.err
    assert f"job {done} not deleted" in said_no.err and said_no.out == ""
    assert (await snapshot(http, done))["status"] == "Done"

    refused = await run_cli("delete", live, "--yes", url=server.url)
    assert refused.code == 1, refused
    assert f"aura-actors cancel {live}" in refused.err
    assert (await snapshot(http, live))["status"] == "Running"

    said_yes = await run_cli("delete", done, url=server.url, stdin=b"y\n")
    assert said_yes.code == 0, said_yes
    assert said_yes.out == f"deleted job {done}\n"
    assert (await http.get(f"/api/jobs/{done}")).status_code == 404
    listed = await run_cli("jobs", url=server.url)
    assert [line.split("\t")[0] for line in listed.lines] == [live]
    await http.post(f"/api/jobs/{live}/cancel")


# -- logs ---------------------------------------------------------------------------------


async def test_logs_prints_the_jobs_log_as_text_or_json(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    failed = await finished(http, FAILING)
    text, as_json = await run_many(["logs", failed], ["logs", failed, "--json"], url=server.url)
    stored = (await http.get(f"/api/jobs/{failed}/logs")).json()["lines"]
    assert text.code == 0 and as_json.code == 0, (text, as_json)
    assert text.lines == log_text(stored)
    assert text.lines[0].endswith(" info    [stage-1] stage-1 started")
    assert " error   [stage-2] " in text.lines[-1]
    assert [json.loads(line) for line in as_json.lines] == stored


async def test_logs_follow_prints_each_new_line_once_until_the_job_ends(tmp_path: Path) -> None:
    settings = ServerSettings.of(max_concurrent_jobs=1)
    async with (
        run_server(settings, data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
    ):
        blocker = await create(http, WAITING)
        # Queued behind the blocker: its log is empty when the follower starts.
        job_id = await create(http, {**QUICK, "warnAt": {"stage": 0, "tick": 1}})
        assert (await snapshot(http, job_id))["status"] == "Queued"
        follower = await start_cli("logs", job_id[:12], "--follow", "--url", server.url)
        with trio.fail_after(20):
            await follower.wait_for_error(f"following the log of job {job_id} \\(Queued\\)")
            assert follower.out == b""
            await http.post(f"/api/jobs/{blocker}/cancel")
            code = await follower.finish()
        stored = (await http.get(f"/api/jobs/{job_id}/logs")).json()["lines"]
    out = follower.out.decode().splitlines()
    assert code == 0, (follower.out.decode(), follower.err.decode())
    assert out == log_text(stored)  # every line, each once, in order
    assert any("warning" in line and "synthetic warning" in line for line in out)
    assert " info    [stage-2] done in " in out[-1]


async def test_logs_follow_of_a_failed_job_exits_1_at_once(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    failed = await finished(http, FAILING)
    result = await run_cli("logs", failed, "--follow", url=server.url)
    assert result.code == 1, result
    assert "synthetic failure" in result.lines[-1]


def line(message: str, second: int) -> LogLine:
    return LogLine.model_validate(
        {"at": f"2030-01-01T00:00:{second:02d}Z", "level": "info", "stage": "s", "message": message}
    )


def test_new_lines_are_found_when_the_oldest_were_dropped() -> None:
    first = [line(f"m{i}", i) for i in range(5)]
    assert new_log_lines([], first) == first
    assert new_log_lines(first, first) == []
    grown = [*first, line("m5", 5)]
    assert new_log_lines(first, grown) == [line("m5", 5)]
    # The log is bounded: two old lines gone, three new ones.
    rotated = [*first[2:], line("m5", 5), line("m6", 6), line("m7", 7)]
    assert [x.message for x in new_log_lines(first, rotated)] == ["m5", "m6", "m7"]
    # Identical messages at different times are different lines.
    same = [line("tick", 1), line("tick", 2)]
    assert new_log_lines(same[:1], same) == same[1:]


# -- submit --json --follow, and titles ---------------------------------------------------


async def test_json_follow_prints_one_event_per_line_and_stops_quietly_in_a_pipe(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    whole = await run_cli(
        "submit", "synthetic", "--param", "ticks=5", "--json", "--follow", url=server.url
    )
    assert whole.code == 0, whole
    events = [json.loads(text) for text in whole.lines]
    assert all(set(event) == {"id", "event", "data"} for event in events)
    assert events[0]["event"] == "job-status" and events[0]["data"]["status"] == "Queued"
    assert events[-1]["event"] == "job-completed"

    # The guide's example: `| head` takes the first lines and goes; the job goes on.
    slow = ["--param", "ticks=3000", "--param", "tickSeconds=0.02"]
    command = shlex.join([*CLI, "submit", "synthetic", *slow, "--json", "--follow"])
    command += f" --url {shlex.quote(server.url)}"
    script = f'set -o pipefail; {command} | head -n 3; echo "exit $?" >&2'
    with trio.fail_after(30):
        piped = await trio.run_process(
            ["bash", "-c", script],
            capture_stdout=True,
            capture_stderr=True,
            stdin=subprocess.DEVNULL,
            env=cli_env(),
        )
    lines = piped.stdout.decode().splitlines()
    err = piped.stderr.decode()
    assert len(lines) == 3 and all(
        set(json.loads(text)) == {"id", "event", "data"} for text in lines
    )
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert "exit 130" in err and "stopped following" in err, err
    job_id = json.loads(lines[0])["data"]["jobId"]
    assert (await snapshot(http, job_id))["status"] == "Running"
    await http.post(f"/api/jobs/{job_id}/cancel")


async def test_jobs_shows_the_topic_as_the_title(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    video = await create(http, {"topic": "Tides of the North Sea", "speed": 0.01}, "video")
    await http.post(f"/api/jobs/{video}/cancel")
    synthetic = await create(http, WAITING)
    listed = await run_cli("jobs", url=server.url)
    await http.post(f"/api/jobs/{synthetic}/cancel")
    rows = [text.split("\t") for text in listed.lines]
    assert [(row[0], row[-1]) for row in rows] == [
        (synthetic, "synthetic stages=1 ticks=1 tickSeconds=600"),
        (video, "Tides of the North Sea"),
    ]


# -- on a terminal ------------------------------------------------------------------------


async def test_ctrl_c_then_yes_on_a_terminal_shows_the_display_once(
    server: InProcessServer, http: httpx.AsyncClient
) -> None:
    """``follow`` on a pseudo-terminal: Ctrl-C, the question, ``y``, the job ends Canceled."""
    job_id = await create(http, {"stages": 1, "ticks": 3000, "tickSeconds": 0.02})
    controller, terminal = os.openpty()
    process = await trio.lowlevel.open_process(
        [*CLI, "follow", job_id, "--url", server.url],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=cli_env(COLUMNS="100", LINES="40", TERM="xterm"),
    )
    os.close(terminal)
    screen = bytearray()
    reader = trio.lowlevel.FdStream(controller)

    async def read_until(marker: bytes) -> None:
        while marker not in screen:
            try:
                chunk = await reader.receive_some(4096)
            except OSError:  # EIO: the terminal's other end is closed
                chunk = b""
            assert chunk, f"no {marker!r} in {screen.decode(errors='replace')!r}"
            screen.extend(chunk)

    with trio.fail_after(30):
        await read_until(b"Overall")
        process.send_signal(signal.SIGINT)
        await read_until(b"[y/N]")
        await reader.send_all(b"y\n")
        await read_until(b"Canceled during stage")
        code = await process.wait()
    await reader.aclose()
    lines = screen_of(screen.decode(errors="replace"))
    shown = "\n".join(lines)
    assert code == 3, shown
    assert sum(f"Job {job_id}" in line for line in lines) == 1, shown
    assert sum("Overall" in line for line in lines) == 1, shown
    assert sum(f"Cancel job {job_id}? [y/N]" in line for line in lines) == 1, shown
    assert not any("ETA" in line for line in lines), shown  # a canceled job has none
    assert (await snapshot(http, job_id))["status"] == "Canceled"
