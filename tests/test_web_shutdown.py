"""Graceful shutdown of the real process (``aura-actors serve``) on SIGTERM and SIGINT."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support.servers import ServerProcess, server_process
from support.streams import Ev, open_sse, stuck_client
from trio_websocket import ConnectionClosed, open_websocket_url

WAITING = {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 1, "tickSeconds": 600}}
FLOOD = {"pipeline": "synthetic", "params": {"stages": 50, "ticks": 100000, "tickSeconds": 0}}
SHUTDOWN_MESSAGE = "canceled: the server is shutting down"
#: From the signal to the exit code: "within a few seconds". A client that stopped reading
#: is cut after the 3 s graceful timeout, so it gets a little more.
EXIT_WITHIN = 2.5
EXIT_WITHIN_WITH_A_STUCK_CLIENT = 5.0


async def stream_job(
    client: httpx.AsyncClient, job_id: str, out: list[Ev], live: trio.Event
) -> None:
    async with open_sse(client, f"/api/jobs/{job_id}/events") as stream:
        await stream.until(lambda e: e.event == "step-status")
        out.extend(stream.received)
        live.set()
        out.extend(await stream.rest())  # ends cleanly: no error from httpx


async def stream_all(client: httpx.AsyncClient, out: list[Ev], live: trio.Event) -> None:
    async with open_sse(client, "/api/events") as stream:
        live.set()
        out.extend(await stream.rest())


async def websocket(server: ServerProcess, job_id: str, out: list[Any], live: trio.Event) -> None:
    url = server.url.replace("http://", "ws://") + f"/api/jobs/{job_id}/ws"
    async with open_websocket_url(url) as ws:
        while True:
            try:
                frame = json.loads(await ws.get_message())
            except ConnectionClosed as closed:
                assert closed.reason is not None
                out.append(closed.reason.code)
                return
            out.append(Ev(frame["id"], frame["event"], frame["data"]))
            if frame["event"] == "step-status":
                live.set()


def assert_cancelled_by_shutdown(events: list[Ev], job_id: str) -> None:
    mine = [e for e in events if e.data.get("jobId") == job_id]
    assert [e.event for e in mine][-2:] == ["job-status", "job-cancelled"], mine[-3:]
    assert mine[-2].data["status"] == "Canceled"
    assert mine[-1].data["message"] == SHUTDOWN_MESSAGE


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_cancels_jobs_ends_every_stream_and_exits_zero(
    tmp_path: Path, signum: int
) -> None:
    async with (
        server_process(tmp_path, ["--max-concurrent-jobs", "1", "--keepalive", "0.5"]) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        all_events: list[Ev] = []
        job_events: list[Ev] = []
        ws_frames: list[Any] = []
        with trio.fail_after(15):
            async with trio.open_nursery() as nursery:
                live = [trio.Event() for _ in range(3)]
                nursery.start_soon(stream_all, client, all_events, live[0])
                await live[0].wait()
                running = (await client.post("/api/jobs", json=WAITING)).json()["id"]
                queued = (await client.post("/api/jobs", json=WAITING)).json()["id"]
                nursery.start_soon(stream_job, client, running, job_events, live[1])
                nursery.start_soon(websocket, server, running, ws_frames, live[2])
                for event in live[1:]:
                    await event.wait()
                assert (await client.get(f"/api/jobs/{queued}")).json()["status"] == "Queued"

                server.send_signal(signum)
                signalled = trio.current_time()
                code = await server.wait()
                took = trio.current_time() - signalled
            # Every stream has ended by now, cleanly (the nursery would have raised).
        assert code == 0
        assert took < EXIT_WITHIN, f"exit took {took:.2f} s"
        assert_cancelled_by_shutdown(job_events, running)
        assert_cancelled_by_shutdown(all_events, running)
        # A queued job is stored and stays Queued: it runs after the next start.
        never_ran = [e for e in all_events if e.data.get("jobId") == queued]
        assert [(e.event, e.data["status"]) for e in never_ran] == [("job-status", "Queued")]
        *ws_events, close_code = ws_frames
        assert_cancelled_by_shutdown(ws_events, running)
        assert close_code == 1000
        log = server.log_lines()
        assert any(line.get("msg") == "shutting down" for line in log)


def server_send_queue(server_port: int, client_port: int) -> int:
    """Bytes the server's socket to ``client_port`` holds unsent (Linux ``/proc/net/tcp``)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == (
            server_port,
            client_port,
        ):
            return int(queues.split(":")[0], 16)
    raise AssertionError(f"no connection from :{server_port} to :{client_port}")


async def test_shutdown_ends_even_with_a_client_that_stopped_reading(tmp_path: Path) -> None:
    async with (
        server_process(tmp_path) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        with trio.fail_after(90):
            job_id = (await client.post("/api/jobs", json=FLOOD)).json()["id"]
            stuck = await stuck_client(server.url, f"/api/jobs/{job_id}/events")
            server_port = stuck.stream.socket.getpeername()[1]
            stuck_port = stuck.stream.socket.getsockname()[1]
            # A well-behaved reader alongside, which must still get its job-cancelled.
            seen: list[Ev] = []
            async with open_sse(client, f"/api/jobs/{job_id}/events") as stream:
                await stream.until(lambda e: e.event == "step-progress")
                while (await client.get("/api/health")).json()["subscribers"] < 2:
                    await stream.next()
                # Until the server's writer to the stuck client is blocked: events keep
                # coming (the reader here gets them) yet what the server holds unsent
                # for the stuck client no longer grows.
                unsent, steady = -1, 0
                while steady < 3:
                    for _ in range(20):
                        await stream.next()
                    now_unsent = server_send_queue(server_port, stuck_port)
                    steady = steady + 1 if now_unsent == unsent and unsent > 0 else 0
                    unsent = now_unsent
                server.send_signal(signal.SIGTERM)
                signalled = trio.current_time()
                seen = await stream.rest()
            code = await server.wait()
            took = trio.current_time() - signalled
            await stuck.aclose()
        assert code == 0
        assert took < EXIT_WITHIN_WITH_A_STUCK_CLIENT, f"exit took {took:.2f} s"
        assert seen[-1].event == "job-cancelled"
        assert seen[-1].data["message"] == SHUTDOWN_MESSAGE


async def test_an_address_in_use_is_a_plain_error_not_a_traceback(tmp_path: Path) -> None:
    async with server_process(tmp_path / "first") as server:
        port = server.url.rsplit(":", 1)[1]
        with trio.fail_after(20):
            command = [sys.executable, "-m", "aura_actors", "serve", "--host", "127.0.0.1"]
            command += ["--port", port, "--data-dir", str(tmp_path / "second")]
            second = await trio.run_process(
                command,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        server.send_signal(signal.SIGTERM)
        assert await server.wait() == 0
    assert second.returncode == 1
    stderr = second.stderr.decode()
    assert f"cannot listen on 127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr
