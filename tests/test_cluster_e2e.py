"""A cluster of real processes on one Redis prefix: two ``serve --role api`` nodes and one
``serve --role worker`` (contract section 8), sharing one data dir.

- A job posted to an API node runs on the worker; its SSE stream on that API node
  shows every event, ids strictly increasing, through ``job-completed``.
- A resume on the other API node with ``Last-Event-ID`` is exact, from every id.
- A cancel sent to an API node reaches the job running on the worker.
- The worker serves only ``/api/health`` and ``/metrics``.
- SIGTERM: every node exits 0.
"""

from __future__ import annotations

import signal
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import trio
from support.redis import SHARED_URL
from support.servers import ServerProcess, server_process
from support.streams import Ev, assert_strictly_increasing, create_job, open_sse, read_sse

#: A job that takes about a second and reports as it goes.
STEPPING = {"pipeline": "synthetic", "params": {"stages": 3, "ticks": 4, "tickSeconds": 0.08}}
#: A job that sits in its first tick until cancelled.
WAITING = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}


def _after(events: list[Ev], last: str) -> list[Ev]:
    cut = Ev(last, "", {}).key
    return [event for event in events if event.id is not None and event.key > cut]


async def _stop(server: ServerProcess) -> None:
    server.send_signal(signal.SIGTERM)
    with trio.fail_after(30):
        code = await server.wait()
    assert code == 0, server.stderr.decode(errors="replace")[-2000:]


async def test_api_nodes_and_a_worker_serve_one_cluster(tmp_path: Path, prefix: str) -> None:
    data_dir = tmp_path / "data"
    common = ["--redis", SHARED_URL, "--redis-prefix", prefix, "--log-format", "json"]
    async with AsyncExitStack() as stack:
        api_1 = await stack.enter_async_context(
            server_process(data_dir, [*common, "--role", "api", "--node-name", "api-1"])
        )
        api_2 = await stack.enter_async_context(
            server_process(data_dir, [*common, "--role", "api", "--node-name", "api-2"])
        )
        worker = await stack.enter_async_context(
            server_process(data_dir, [*common, "--role", "worker", "--node-name", "w-1"])
        )
        one = await stack.enter_async_context(httpx.AsyncClient(base_url=api_1.url, timeout=30))
        two = await stack.enter_async_context(httpx.AsyncClient(base_url=api_2.url, timeout=30))
        bare = await stack.enter_async_context(httpx.AsyncClient(base_url=worker.url, timeout=30))

        # A job posted to api-1 runs on the worker; api-1 streams all of it, live.
        job = await create_job(one, STEPPING)
        with trio.fail_after(30):
            live = await read_sse(one, f"/api/jobs/{job}/events")
        assert live[0].event == "job-status" and live[0].data["status"] == "Queued"
        assert live[-1].event == "job-completed", [e.event for e in live]
        assert "step-status" in {e.event for e in live}
        assert_strictly_increasing(live)
        snapshot = (await two.get(f"/api/jobs/{job}")).json()
        assert (snapshot["status"], snapshot["node"]) == ("Done", "w-1")

        # api-2 replays it from storage; a resume there from every id is exact, and the
        # live view on api-1 lost nothing but intermediate progress.
        replay = await read_sse(two, f"/api/jobs/{job}/events")
        assert replay[-1].event == "job-completed"
        assert {e.id for e in replay} <= {e.id for e in live}
        settled = [e.triple() for e in live if e.event != "step-progress"]
        assert [e.triple() for e in replay if e.event != "step-progress"] == settled
        for event in replay[:-1]:
            assert event.id is not None
            headers = {"Last-Event-ID": event.id}
            again = await read_sse(two, f"/api/jobs/{job}/events", headers=headers)
            assert [e.triple() for e in again] == [e.triple() for e in _after(replay, event.id)]

        # A cancel sent to api-2 reaches the job the worker runs; api-1's stream ends with it.
        waiting = await create_job(one, WAITING)
        with trio.fail_after(30):
            async with open_sse(one, f"/api/jobs/{waiting}/events") as stream:
                await stream.until(lambda event: event.event == "step-status")
                answer = await two.post(f"/api/jobs/{waiting}/cancel")
                assert answer.status_code == 202, answer.text
                rest = await stream.rest()
        assert rest[-1].event == "job-cancelled", [e.event for e in rest]
        assert (await one.get(f"/api/jobs/{waiting}")).json()["status"] == "Canceled"
        finished = await two.post(f"/api/jobs/{waiting}/cancel")
        assert finished.status_code == 409

        # The worker serves its health and metrics, and nothing else.
        assert (await bare.get("/api/health")).status_code == 200
        assert (await bare.get("/metrics")).status_code == 200
        assert (await bare.get("/api/jobs")).status_code == 404
        assert (await bare.post("/api/jobs", json=WAITING)).status_code == 404

        for server in (api_1, api_2, worker):
            await _stop(server)
    lock_files = sorted(path.name for path in data_dir.glob("*.lock"))
    assert lock_files == ["aura-node-api-1.lock", "aura-node-api-2.lock", "aura-node-w-1.lock"]
