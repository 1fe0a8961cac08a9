"""The attacker process: one abuse against a running server until it is told to stop.

``python -m bench.abuse.attacks CONDITION --port P --config JSON``

Every socket comes from the config's ``source`` (default :data:`SOURCE`),
another loopback address than the probe's 127.0.0.1, so the server's
per-address defences (its penalty box) see the attacker as one client and the
probe as another, as they would be.

Prints ``ready`` on stdout once the abuse is in place (its sockets opened), runs
it until SIGTERM, then prints one JSON object of counters (what the abuse did
and what the server answered) and exits; every socket is closed on the way
out. The abuses, on raw trio sockets (each from an issue 11 finding):

``slow-readers``
    SSE clients of ``/api/events`` whose sockets have a small receive buffer
    and never read.
``slowloris``
    Sockets sending a request head one byte at a time; each one the server
    cuts (header timeout) is replaced.
``ws-big-frames``
    WebSocket clients sending a frame over the 64 KiB cap, reading the close
    code (1009 expected), reconnecting.
``replay-storm``
    Clients replaying ``/api/events`` from ``Last-Event-ID: 0-0`` over the
    stored jobs, reconnecting after each replay.
``head-storm``
    ``HEAD /api/events`` with a ``GET /api/health`` pipelined behind, then close.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import socket
import struct
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, RejectConnection, Request

from bench.http.wire import HttpError, open_sse

HOST = "127.0.0.1"
#: The attacker's own address by default (all of 127.0.0.0/8 is loopback on Linux).
SOURCE = "127.0.0.2"
JsonDict = dict[str, Any]
Attack = Callable[[int, JsonDict, Counter[str], trio.Event], Awaitable[None]]

_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def _head(method: str, path: str, extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n{extra}\r\n".encode()


Worker = Callable[[int, Callable[[], None]], Awaitable[None]]


async def _spawn_all(count: int, one: Worker, ready: trio.Event) -> None:
    """Start ``count`` workers one after the other, each once its first socket is open
    (it calls the ``opened`` it is given), then set ``ready``."""

    async def worker(index: int, task_status: trio.TaskStatus[None]) -> None:
        started = False

        def opened() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        await one(index, opened)

    async with trio.open_nursery() as nursery:
        for index in range(count):
            await nursery.start(worker, index)
        ready.set()


async def _again(counts: Counter[str], error: BaseException) -> None:
    """Count a failed connection attempt and pause a little, so a refusing server is no spin."""
    counts[f"error_{type(error).__name__}"] += 1
    await trio.sleep(0.05)


async def slow_readers(
    port: int, config: JsonDict, counts: Counter[str], ready: trio.Event
) -> None:
    """``slow_readers`` SSE clients on small-receive-buffer sockets that never read."""
    sockets: list[trio.socket.SocketType] = []
    request = _head("GET", "/api/events", "Accept: text/event-stream\r\n")
    try:
        for _ in range(config["slow_readers"]):
            sock = trio.socket.socket()
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, config["slow_reader_rcvbuf"])
            await sock.bind((config.get("source", SOURCE), 0))
            await sock.connect((HOST, port))
            await sock.send(request)
            counts["connected"] += 1
        ready.set()
        await trio.sleep_forever()
    finally:
        for sock in sockets:
            sock.close()


async def slowloris(port: int, config: JsonDict, counts: Counter[str], ready: trio.Event) -> None:
    """``slowloris`` sockets trickling a request head; a socket cut by the server is replaced."""
    interval = config["slowloris_interval"]
    head = _head("GET", "/api/health", "X-Pad: ")
    source = config.get("source", SOURCE)

    async def one(index: int, opened: Callable[[], None]) -> None:
        while True:
            try:
                stream = await trio.open_tcp_stream(HOST, port, local_address=source)
            except OSError as error:
                await _again(counts, error)
                continue
            counts["connections"] += 1
            opened()
            async with stream:
                try:
                    await stream.send_all(head[:20])
                    await trio.sleep(interval * (index % 10) / 10)  # spread the trickles
                    while True:
                        await trio.sleep(interval)
                        await stream.send_all(b"a")
                        counts["bytes_trickled"] += 1
                except _BROKEN:
                    counts["cut_by_server"] += 1

    await _spawn_all(config["slowloris"], one, ready)


def _big_frame(size: int) -> bytes:
    """A masked client text frame of ``size`` ``x`` (any connection may send the same bytes).

    Built by hand: wsproto only frames a message on a connection past its handshake.
    """
    key = os.urandom(4)
    masked = bytes(ord("x") ^ k for k in key)
    payload = (masked * (size // 4 + 1))[:size]
    return b"\x81\xff" + struct.pack("!Q", size) + key + payload


async def _ws_connect(port: int, path: str, source: str) -> tuple[trio.SocketStream, WSConnection]:
    """A WebSocket from ``source`` past its opening handshake (refused: :class:`HttpError`)."""
    stream = await trio.open_tcp_stream(HOST, port, local_address=source)
    ws = WSConnection(ConnectionType.CLIENT)
    try:
        await stream.send_all(ws.send(Request(host=HOST, target=path)))
        while chunk := await stream.receive_some(65536):
            ws.receive_data(chunk)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    return stream, ws
                if isinstance(event, RejectConnection):
                    raise HttpError(f"upgrade refused with {event.status_code}")
        raise HttpError("closed during the handshake")
    except BaseException:
        await stream.aclose()
        raise


async def _close_code(stream: trio.SocketStream, ws: WSConnection) -> int | None:
    """Read until the server's close frame; its code (``None`` if it just hung up)."""
    with contextlib.suppress(*_BROKEN):
        while chunk := await stream.receive_some(65536):
            ws.receive_data(chunk)
            for event in ws.events():
                if isinstance(event, CloseConnection):
                    return event.code
    return None


async def ws_big_frames(
    port: int, config: JsonDict, counts: Counter[str], ready: trio.Event
) -> None:
    """``ws_clients`` WebSocket clients each sending an oversized frame, reconnecting."""
    frame = _big_frame(config["ws_frame_bytes"])
    path = f"/api/jobs/{config['job_id']}/ws"

    async def send(stream: trio.SocketStream) -> None:
        with contextlib.suppress(*_BROKEN):  # the server may close before it has it all
            await stream.send_all(frame)

    async def one(_index: int, opened: Callable[[], None]) -> None:
        while True:
            try:
                stream, ws = await _ws_connect(port, path, config.get("source", SOURCE))
            except (*_BROKEN, HttpError) as error:
                await _again(counts, error)
                continue
            opened()
            async with stream, trio.open_nursery() as nursery:
                nursery.start_soon(send, stream)
                counts[f"close_{await _close_code(stream, ws)}"] += 1
                nursery.cancel_scope.cancel()

    await _spawn_all(config["ws_clients"], one, ready)


async def _replay_once(port: int, wanted: int, counts: Counter[str], source: str) -> None:
    marker = b"event: job-completed"
    stream = await open_sse(HOST, port, "/api/events", last_event_id="0-0", local_address=source)
    seen, tail = 0, b""
    async with stream.stream:
        while seen < wanted:
            chunk = await stream.stream.receive_some(65536)
            if not chunk:
                break
            counts["bytes"] += len(chunk)
            window = tail + chunk  # a marker may straddle two reads
            seen += window.count(marker) - tail.count(marker)
            tail = window[-len(marker) :]
    counts["replays" if seen >= wanted else "replays_cut"] += 1


async def replay_storm(
    port: int, config: JsonDict, counts: Counter[str], ready: trio.Event
) -> None:
    """``replay_clients`` clients replaying every stored job from ``0-0``, reconnecting."""
    source = config.get("source", SOURCE)

    async def one(_index: int, opened: Callable[[], None]) -> None:
        opened()
        while True:
            try:
                await _replay_once(port, config["stored_jobs"], counts, source)
            except (*_BROKEN, HttpError) as error:
                await _again(counts, error)

    await _spawn_all(config["replay_clients"], one, ready)


async def head_storm(port: int, config: JsonDict, counts: Counter[str], ready: trio.Event) -> None:
    """``head_workers`` loops of ``HEAD`` on an SSE route + a pipelined request, then close."""
    paths = ("/api/events", f"/api/jobs/{config['job_id']}/events")
    source = config.get("source", SOURCE)
    requests = [_head("HEAD", path) + _head("GET", "/api/health") for path in paths]

    async def one(_index: int, opened: Callable[[], None]) -> None:
        opened()
        while True:
            try:
                stream = await trio.open_tcp_stream(HOST, port, local_address=source)
                async with stream:
                    await stream.send_all(requests[counts["sent"] % 2])
                counts["sent"] += 1
            except _BROKEN as error:
                await _again(counts, error)

    await _spawn_all(config["head_workers"], one, ready)


ATTACKS: dict[str, Attack] = {
    "slow-readers": slow_readers,
    "slowloris": slowloris,
    "ws-big-frames": ws_big_frames,
    "replay-storm": replay_storm,
    "head-storm": head_storm,
}


async def attack(condition: str, port: int, config: JsonDict) -> JsonDict:
    """Run ``condition`` until SIGTERM; say ``ready`` once it is in place; its counters."""
    counts: Counter[str] = Counter()
    ready = trio.Event()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ATTACKS[condition], port, config, counts, ready)
            await ready.wait()
            print("ready", flush=True)
            async for _signal in signals:
                break
            nursery.cancel_scope.cancel()
    return dict(counts)


def main(argv: list[str] | None = None) -> int:
    """Run one abuse; print ``ready``, then its counters as JSON when stopped."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("condition", choices=sorted(ATTACKS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", default="{}", help="the plan's sizes (and job_id) as JSON")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    counts = trio.run(attack, args.condition, args.port, json.loads(args.config))
    json.dump(counts, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
