"""What an operator sees: ``/metrics``, and what ``serve`` says about its data dir and demo jobs."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import trio
from support.servers import run_server, server_process, write_tokens
from support.streams import read_sse

from aura_actors.web import ServerSettings

QUICK = {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 3, "tickSeconds": 0}}
WAITING = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition ``text``."""
    label_text = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(label_text) + r"\}" if labels else "")
    match = re.search(r"^" + pattern + r" ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match is not None, f"no sample {name}{labels} in:\n{text}"
    return float(match.group(1))


async def test_metrics_count_jobs_events_streams_and_latencies_and_name_no_one(
    tmp_path: Path,
) -> None:
    tokens = write_tokens(tmp_path / "tokens.json", {"secret-token-ann": "ann"})
    settings = ServerSettings.of(auth_tokens=tokens)
    auth = {"Authorization": "Bearer secret-token-ann"}
    async with (
        run_server(settings, data_dir=tmp_path / "data") as server,
        httpx.AsyncClient(base_url=server.url, headers=auth) as client,
    ):
        with trio.fail_after(20):
            done = (await client.post("/api/jobs", json=QUICK)).json()["id"]
            events = await read_sse(client, f"/api/jobs/{done}/events")
            assert events[-1].event == "job-completed"
            waiting = (await client.post("/api/jobs", json=WAITING)).json()["id"]
            assert (await client.post(f"/api/jobs/{waiting}/cancel")).status_code == 202
            await read_sse(client, f"/api/jobs/{waiting}/events")
            # No token needed for /metrics.
            async with httpx.AsyncClient(base_url=server.url) as anonymous:
                response = await anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert _sample(text, "aura_jobs", status="Done", pipeline="synthetic") == 1
    assert _sample(text, "aura_jobs", status="Canceled", pipeline="synthetic") == 1
    assert _sample(text, "aura_events_published_total", type="job-completed") == 1
    assert _sample(text, "aura_events_published_total", type="job-cancelled") == 1
    assert _sample(text, "aura_store_commit_seconds_count") >= 1
    assert _sample(text, "aura_cancel_latency_seconds_count") == 1
    assert _sample(text, "aura_delivery_lag_seconds_count") >= 1
    assert _sample(text, "aura_subscribers", transport="sse") == 0
    assert _sample(text, "aura_storage_ok") == 1
    assert _sample(text, "aura_queue_depth") == 0
    for private in (done, waiting, "ann", "secret-token-ann", "stages", "tickSeconds"):
        assert private not in text


async def test_serve_names_its_data_dir_and_adds_demo_jobs_only_to_an_empty_store(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with server_process(data_dir, ["--demo-jobs", "1"]) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            with trio.fail_after(20):
                while not (await client.get("/api/jobs")).json()["jobs"]:  # noqa: ASYNC110
                    await trio.sleep(0.01)
                ids = [job["id"] for job in (await client.get("/api/jobs")).json()["jobs"]]
        server.send_signal(signal.SIGTERM)
        assert await server.wait() == 0
    first = server.stdout.decode()
    assert f"data dir: {data_dir.resolve()} (0 jobs stored)" in first
    assert "submitting 1 demo video job:" in first
    assert len(ids) == 1
    async with server_process(data_dir, ["--demo-jobs", "1"]) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            listed = [job["id"] for job in (await client.get("/api/jobs")).json()["jobs"]]
        server.send_signal(signal.SIGTERM)
        assert await server.wait() == 0
    second = server.stdout.decode()
    assert "(1 job stored)" in second
    assert "demo jobs: not submitted, the data dir already holds jobs" in second
    assert listed == ids
