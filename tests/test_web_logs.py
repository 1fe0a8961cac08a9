"""The real process's logs: one JSON line per request and per job transition, never a token."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import httpx
import trio
from support.servers import server_process, write_tokens
from support.streams import read_sse
from trio_websocket import ConnectionClosed, open_websocket_url

ALICE = "tok-alice-3e9d0c7a"
BOB = "tok-bob-55a1f0e2"
WRONG = "tok-wrong-b7c4d2e9"
QUICK = {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 2, "tickSeconds": 0}}


async def test_one_json_line_per_request_and_transition_and_no_token_anywhere(
    tmp_path: Path,
) -> None:
    tokens = write_tokens(tmp_path / "tokens.json", {ALICE: "alice", BOB: "bob"})
    async with (
        server_process(
            tmp_path / "data", ["--auth-tokens", str(tokens), "--log-level", "debug"]
        ) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        bearer = {"Authorization": f"Bearer {ALICE}"}
        with trio.fail_after(15):
            created = await client.post("/api/jobs", json=QUICK, headers=bearer)
            job_id = created.json()["id"]
            expected = Counter({("POST", "/api/jobs", 202): 1})
            for path, params, headers, status in (
                (f"/api/jobs/{job_id}", {"access_token": ALICE, "x": "1"}, {}, 200),
                (f"/api/jobs/{job_id}", {}, {"Authorization": f"Bearer {BOB}"}, 404),
                ("/api/jobs", {}, {"Authorization": f"Bearer {WRONG}"}, 401),
                ("/api/jobs", {"access_token": WRONG}, {}, 401),
                ("/api/nope", {"access_token": ALICE}, {}, 404),
                ("/api/health", {"access_token": WRONG}, {}, 200),
            ):
                response = await client.get(path, params=params, headers=headers)
                assert response.status_code == status
                expected[("GET", path, status)] += 1
            events = await read_sse(
                client, f"/api/jobs/{job_id}/events", params={"access_token": ALICE}
            )
            assert events[-1].event == "job-completed"
            expected[("GET", f"/api/jobs/{job_id}/events", 200)] += 1
            ws_url = server.url.replace("http://", "ws://") + f"/api/jobs/{job_id}/ws"
            for token, close_code in ((ALICE, 1000), (WRONG, 4401)):
                async with open_websocket_url(f"{ws_url}?access_token={token}") as ws:
                    try:
                        while True:
                            await ws.get_message()
                    except ConnectionClosed as closed:
                        assert closed.reason is not None and closed.reason.code == close_code
            server.send_signal(signal.SIGTERM)
            assert await server.wait() == 0

    stderr = server.stderr.decode()
    for token in (ALICE, BOB, WRONG):
        assert token not in stderr, "a token in the logs"
        assert token not in server.stdout.decode()
    lines = server.log_lines()  # every stderr line is one JSON object
    for line in lines:
        assert {"ts", "level", "logger", "msg"} <= set(line), line
        assert json.loads(json.dumps(line)) == line

    requests = [line for line in lines if line["logger"] == "aura_actors.requests"]
    for line in requests:
        assert isinstance(line["method"], str) and isinstance(line["status"], int)
        assert isinstance(line["path"], str) and "?" not in line["path"], line
    http = Counter(
        (line["method"], line["path"], line["status"])
        for line in requests
        if line["msg"] == "request"
    )
    assert http == expected, "one line per request, no more, no less"
    sockets = [line for line in requests if line["msg"] == "websocket"]
    assert [(s["path"], s["close_code"]) for s in sockets] == [
        (f"/api/jobs/{job_id}/ws", 1000),
        (f"/api/jobs/{job_id}/ws", 4401),
    ]

    transitions = [
        (line["from"], line["to"])
        for line in lines
        if line["msg"] == "job transition" and line.get("job_id") == job_id
    ]
    assert transitions == [("Queued", "Running"), ("Running", "Done")]
