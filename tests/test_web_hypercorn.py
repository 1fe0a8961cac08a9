"""The Hypercorn workarounds of ``aura_actors.web._hypercorn``, one test each, on bare ASGI apps.

Each test runs :func:`serve_app` (our copy of Hypercorn's trio worker) with a
tiny ASGI app, so what is tested is the workaround, not the rest of the
server. Without workaround 1 the shutdown test never ends; without 3 the
connection stays counted for the ping interval (20 s); without 2 the write
test still passes (it holds the cheap write to Hypercorn's semantics).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from support.hypercorn import lifespan, serving, stopped_with_a_write_blocked
from support.streams import RawHttp, read_sse, stuck_client, wait_until
from trio_websocket import open_websocket_url

from aura_actors.cli import main
from aura_actors.web import ServerSettings, UntestedHypercorn, _hypercorn, serve
from aura_actors.web._hypercorn import _send_all, _write_now, check_version


async def endless_stream(scope: Any, receive: Any, send: Any) -> None:
    """200, then 64 KiB chunks for ever (or until the client is gone)."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    while True:
        await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})


# -- the version check ----------------------------------------------------------------------


def test_an_untested_hypercorn_is_refused_with_a_message_that_says_what_to_do() -> None:
    check_version()  # the installed one is tested
    check_version("0.18.0")
    for version in ("0.19.0", "0.17.2", "1.0"):
        with pytest.raises(UntestedHypercorn) as error:
            check_version(version)
        assert f"Hypercorn {version} is untested" in str(error.value)
        assert "TESTED_VERSIONS" in str(error.value)


async def test_serve_refuses_an_untested_hypercorn_before_touching_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_hypercorn._version, "installed_version", lambda: "0.19.1")
    data_dir = tmp_path / "data"
    with pytest.raises(UntestedHypercorn):
        await serve(ServerSettings.of(port=0, data_dir=data_dir))
    assert not data_dir.exists()
    assert await trio.to_thread.run_sync(main, ["serve", "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("aura-actors: Hypercorn 0.19.1 is untested") and "Traceback" not in err


# -- workaround 1: a write that never ends is cut at shutdown ---------------------------------


async def test_a_write_to_a_client_that_stopped_reading_does_not_hold_shutdown() -> None:
    async with serving(endless_stream, graceful_timeout=0.2) as served:
        stuck = await stuck_client(served.url)
        ended = await stopped_with_a_write_blocked(served, served.stop.set)
        assert ended, "shutdown waited for a write that never ends"
        assert len(served.connections) == 0
        with pytest.raises(OSError) as reset:
            while await stuck.stream.socket.recv(65536):  # what the buffers held, then the reset
                pass
        assert reset.value.errno == socket.errno.ECONNRESET
        await stuck.aclose()


# -- workaround 2: the cheap write keeps Hypercorn's semantics --------------------------------


async def test_cheap_writes_arrive_whole_and_in_order_even_when_the_buffer_is_full() -> None:
    left, right = trio.socket.socketpair()
    payloads = [bytes([index]) * size for index, size in enumerate((10, 3_000_000, 7, 500_000))]
    received = bytearray()

    async def read_all() -> None:
        while len(received) < sum(map(len, payloads)):
            await trio.sleep(0.001)  # a slow reader: the writer's buffer fills up
            received.extend(await right.recv(65536))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        for payload in payloads:
            sent = _write_now(left, payload)
            if sent < len(payload):
                await _send_all(left, memoryview(payload)[sent:])
    assert bytes(received) == b"".join(payloads)
    left.close()
    with pytest.raises(trio.ClosedResourceError):
        _write_now(left, b"x")
    right.close()


async def test_a_response_larger_than_the_socket_buffers_arrives_whole() -> None:
    chunks = [bytes([index % 251]) * size for index, size in enumerate([1, 4_000_000, 3] * 3)]

    async def big(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async with serving(big) as served:
        raw = await RawHttp.connect(served.url)
        await raw.send_request("GET", "/")
        with trio.fail_after(20):
            await raw.read_head()
            body = await raw.read_body()
        assert raw.status == 200
        assert body == b"".join(chunks)
        await raw.aclose()


async def test_a_write_to_a_vanished_peer_is_a_broken_stream() -> None:
    left, right = trio.socket.socketpair()
    right.close()
    with pytest.raises(trio.BrokenResourceError):  # EPIPE (Python ignores SIGPIPE)
        _write_now(left, b"x")
    left.close()


# -- workaround 3: a connection whose peer is gone ends at once -------------------------------


async def test_a_websocket_whose_peer_vanished_ends_without_waiting_for_the_next_ping() -> None:
    async def hold(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with serving(hold, websocket_ping_interval=20.0) as served:
        url = served.url.replace("http://", "ws://") + "/"
        async with open_websocket_url(url) as ws:
            await wait_until(lambda: len(served.connections) == 1)
            await ws._close_stream()  # the TCP connection just goes away
        # The ping task sleeps 20 s before it would notice; the connection ends now.
        await wait_until(lambda: len(served.connections) == 0, within=2)


# -- WebSocket frames built once (workaround 4) ------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_prebuilt_text_frame_is_byte_for_byte_wsprotos(size: int) -> None:
    from wsproto.frame_protocol import FrameProtocol

    text = ("é" + "x" * size)[:size] if size else ""
    assert _hypercorn.text_frame(text) == bytes(FrameProtocol(False, []).send_data(text))


def test_there_is_no_frame_writer_for_a_send_that_is_not_hypercorns() -> None:
    async def send(message: Any) -> None:
        pass

    assert _hypercorn.frame_writer(send) is None
    assert _hypercorn.frame_writer(object()) is None


async def test_prebuilt_frames_and_ordinary_messages_arrive_in_order() -> None:
    outcomes: list[bool] = []

    async def mixed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        assert (await receive())["type"] == "websocket.connect"
        write = _hypercorn.frame_writer(send)
        assert write is not None
        # Not accepted yet: the writer declines, so nothing goes before the handshake.
        outcomes.append(await write(_hypercorn.text_frame("too early")))
        await send({"type": "websocket.accept"})
        outcomes.append(await write(_hypercorn.text_frame("one")))
        await send({"type": "websocket.send", "text": "two"})
        outcomes.append(await write(_hypercorn.text_frame("three " + "é" * 40_000)))
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with serving(mixed) as served:
        url = served.url.replace("http://", "ws://") + "/"
        async with open_websocket_url(url) as ws:
            received = [await ws.get_message() for _ in range(3)]
    assert received == ["one", "two", "three " + "é" * 40_000]
    assert outcomes == [False, True, True]


async def test_a_jobs_websocket_sends_its_events_as_prebuilt_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import httpx
    from support.contract import QUICK_JOB
    from support.servers import run_server
    from trio_websocket import ConnectionClosed

    from aura_actors.web import _asgi

    written: list[bytes] = []

    def counting_writer(send: Any) -> Any:
        write = _hypercorn.frame_writer(send)
        assert write is not None

        async def counted(frame: bytes) -> bool:
            done = await write(frame)
            written.append(frame)
            return done

        return counted

    monkeypatch.setattr(_asgi, "frame_writer", counting_writer)
    raw_writes: list[bytes] = []
    write_raw = _hypercorn._Connection.write_raw

    async def counted_raw(self: _hypercorn._Connection, data: bytes) -> None:
        raw_writes.append(data)
        await write_raw(self, data)

    monkeypatch.setattr(_hypercorn._Connection, "write_raw", counted_raw)
    async with run_server(data_dir=tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            answer = await client.post("/api/jobs", json=QUICK_JOB)
            job_id = answer.json()["id"]
            with trio.fail_after(10):
                await read_sse(client, f"/api/jobs/{job_id}/events")  # to its end: done
        raw_writes.clear()  # the SSE stream's, above
        url = server.url.replace("http://", "ws://") + f"/api/jobs/{job_id}/ws"
        messages: list[str] = []
        with trio.fail_after(10):
            async with open_websocket_url(url) as ws:
                try:
                    while True:
                        message = await ws.get_message()
                        assert isinstance(message, str)
                        messages.append(message)
                except ConnectionClosed:
                    pass
    assert json.loads(messages[-1])["event"] == "job-completed"
    # Every event went out as its prebuilt frame, and the client read exactly those texts;
    # the job had ended, so its history was ready at once: a burst of frames per write.
    assert b"".join(_hypercorn.text_frame(m) for m in messages) == b"".join(written)
    assert len(written) < len(messages)
    assert raw_writes == written, "each write went straight to the socket (workaround 5's write)"
