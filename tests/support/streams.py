"""Reading the server's streams in tests: SSE (httpx-sse and raw bytes), ids, plain HTTP on h11.

The SSE checks here do not use the project's own codec: events come through
httpx-sse (a client someone else wrote) or through :func:`parse_sse_wire`,
which holds the raw bytes to the exact framing the server promises.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx
import trio
from httpx_sse import aconnect_sse

TERMINAL_EVENTS = frozenset({"job-completed", "job-failed", "job-cancelled"})
EVENT_TYPES = frozenset(
    {
        "job-status",
        "step-status",
        "step-progress",
        "job-completed",
        "job-failed",
        "job-cancelled",
        "warning",
        "error",
    }
)
_ID_RE = re.compile(r"(0|[1-9][0-9]*)-(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class Ev:
    """One event as a client saw it: id (``None`` for stream errors), type, parsed data."""

    id: str | None
    event: str
    data: dict[str, Any]

    @property
    def key(self) -> tuple[int, int]:
        assert self.id is not None, f"event without id: {self}"
        return parse_event_id(self.id)

    @property
    def is_terminal(self) -> bool:
        return self.event in TERMINAL_EVENTS

    def triple(self) -> tuple[str | None, str, str]:
        """``(id, event, data)`` with data re-serialized canonically, to compare views."""
        return (self.id, self.event, json.dumps(self.data, sort_keys=True))


def parse_event_id(text: str) -> tuple[int, int]:
    """``"<millis>-<counter>"`` as the pair of integers it is compared as."""
    match = _ID_RE.fullmatch(text)
    assert match is not None, f"malformed event id {text!r}"
    return int(match.group(1)), int(match.group(2))


def assert_strictly_increasing(events: Sequence[Ev]) -> None:
    """Every id-carrying event's id is greater, as (millis, counter), than the one before."""
    keys = [event.key for event in events if event.id is not None]
    for earlier, later in itertools.pairwise(keys):
        assert earlier < later, f"ids not strictly increasing: {earlier} then {later}"


def compact_progress(events: Iterable[Ev]) -> list[Ev]:
    """Replace every run of consecutive ``step-progress`` events by its last one.

    This is what the contract allows a reader to lose: intermediate progress,
    never the latest progress before another event, never another event.
    """
    out: list[Ev] = []
    for event in events:
        if out and event.event == "step-progress" and out[-1].event == "step-progress":
            out[-1] = event
        else:
            out.append(event)
    return out


def summary(events: Iterable[Ev]) -> list[tuple[str | None, str]]:
    return [(event.id, event.event) for event in events]


async def wait_until(predicate: Callable[[], bool], *, within: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; fail after ``within`` seconds.

    For state in the server that no stream tells about (a subscriber count),
    so it is polled every 10 ms; the bound makes a bug fail, not hang.
    """
    with trio.fail_after(within):
        while not predicate():  # noqa: ASYNC110 - nothing to wait on but the state itself
            await trio.sleep(0.01)


# -- SSE through httpx-sse ---------------------------------------------------------------------


@dataclass
class SseStream:
    """An open SSE response and its events (httpx-sse's retry/comment-only blocks dropped)."""

    response: httpx.Response
    events: AsyncIterator[Ev]
    received: list[Ev] = field(default_factory=list)

    async def next(self) -> Ev:
        event = await anext(self.events)
        self.received.append(event)
        return event

    async def until(self, predicate: Callable[[Ev], bool]) -> list[Ev]:
        """Events up to and including the first one matching ``predicate``."""
        got: list[Ev] = []
        while True:
            event = await self.next()
            got.append(event)
            if predicate(event):
                return got

    async def rest(self) -> list[Ev]:
        """Every event until the server ends the stream."""
        got: list[Ev] = []
        async for event in self.events:
            self.received.append(event)
            got.append(event)
        return got


@asynccontextmanager
async def open_sse(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> AsyncIterator[SseStream]:
    """Open ``path`` as an SSE stream; leaving the block disconnects."""
    async with aconnect_sse(
        client, "GET", path, headers=dict(headers or {}), params=params, timeout=None
    ) as source:
        response = source.response
        if response.status_code != 200:
            await response.aread()

            async def nothing() -> AsyncIterator[Ev]:
                return
                yield

            yield SseStream(response, nothing())
            return

        async def events() -> AsyncIterator[Ev]:
            async for sse in source.aiter_sse():
                if sse.event == "message" and sse.data == "":
                    continue  # a retry: or comment-only block, as httpx-sse reports it
                yield Ev(sse.id or None, sse.event, json.loads(sse.data))

        iterator = events()
        try:
            yield SseStream(response, iterator)
        finally:
            await iterator.aclose()  # type: ignore[attr-defined]


async def read_sse(
    client: httpx.AsyncClient,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> list[Ev]:
    """Every event of a stream that ends on its own (a job's stream)."""
    async with open_sse(client, path, headers=headers, params=params) as stream:
        assert stream.response.status_code == 200, stream.response.text
        return await stream.rest()


# -- raw HTTP on a socket, parsed by h11 -------------------------------------------------------


@dataclass
class RawResponse:
    """A response read off the wire: status, headers as sent, de-chunked body, raw bytes."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    wire: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name.lower()]
        assert len(values) <= 1, f"header {name} sent {len(values)} times"
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


class RawHttp:
    """One HTTP/1.1 exchange on a raw trio socket, with h11 checking the framing."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)
        self.wire = bytearray()
        self.status = 0
        self.headers: list[tuple[str, str]] = []

    @classmethod
    async def connect(cls, url: str) -> RawHttp:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        return cls(await trio.open_tcp_stream(parts.hostname, parts.port))

    async def send_request(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> None:
        all_headers = [("Host", "localhost"), *headers]
        if body is not None:
            all_headers.append(("Content-Length", str(len(body))))
        data = self.conn.send(h11.Request(method=method, target=target, headers=all_headers))
        if body:
            data += self.conn.send(h11.Data(data=body))
        data += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)

    async def _next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            chunk = await self.stream.receive_some(65536)
            self.wire.extend(chunk)
            self.conn.receive_data(chunk)

    async def read_head(self) -> None:
        event = await self._next_event()
        while isinstance(event, h11.InformationalResponse):
            event = await self._next_event()
        assert isinstance(event, h11.Response), event
        self.status = event.status_code
        self.headers = [(k.decode().lower(), v.decode()) for k, v in event.headers]

    async def read_data(self) -> bytes | None:
        """The next piece of the body, or ``None`` at its end."""
        event = await self._next_event()
        if isinstance(event, h11.Data):
            return bytes(event.data)
        assert isinstance(event, h11.EndOfMessage), event
        return None

    async def read_body(self) -> bytes:
        body = bytearray()
        while (piece := await self.read_data()) is not None:
            body.extend(piece)
        return bytes(body)

    async def aclose(self) -> None:
        await self.stream.aclose()


async def stuck_client(url: str, target: str = "/") -> RawHttp:
    """A client that sends ``GET target`` to the server at ``url`` and then reads nothing,
    with a tiny receive window: what the server writes to it soon fills both socket
    buffers. Its socket is ``.stream.socket``."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect((parts.hostname, parts.port))
    raw = RawHttp(trio.SocketStream(sock))
    await raw.send_request("GET", target)
    return raw


async def raw_request(
    url: str,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
) -> RawResponse:
    """Send one request on a fresh connection and read the whole response."""
    raw = await RawHttp.connect(url)
    try:
        await raw.send_request(method, target, headers, body)
        await raw.read_head()
        payload = await raw.read_body()
        return RawResponse(raw.status, raw.headers, payload, bytes(raw.wire))
    finally:
        await raw.aclose()


# -- the exact SSE framing ---------------------------------------------------------------------

_EVENT_BLOCK = re.compile(
    r"id: (?P<id>(?:0|[1-9][0-9]*)-(?:0|[1-9][0-9]*))\n"
    r"event: (?P<event>[a-z-]+)\n"
    r"data: (?P<data>[^\r\n]*)\n"
)
_ERROR_BLOCK = re.compile(r"event: error\ndata: (?P<data>[^\r\n]*)\n")


@dataclass(frozen=True)
class WireStream:
    """A stream's body split into its blocks, each held to the exact framing."""

    retry: int
    items: list[Ev | str]  # events, and the text of each comment

    @property
    def events(self) -> list[Ev]:
        return [item for item in self.items if isinstance(item, Ev)]

    @property
    def comments(self) -> list[str]:
        return [item for item in self.items if isinstance(item, str)]


def parse_sse_wire(body: bytes, *, complete: bool = True) -> WireStream:
    """Split a raw SSE body into blocks and check each one's exact bytes.

    The body must be UTF-8 with LF line endings; it must open with exactly
    ``retry: <n>\\n\\n``; every later block is ``: <comment>\\n\\n``, or
    ``id:``/``event:``/``data:`` lines (only a stream ``error`` may lack the
    id) with ``data`` one line of JSON, then a blank line. With ``complete``,
    the body must end at a block boundary.
    """
    text = body.decode("utf-8")
    assert "\r" not in text, "CR in an SSE body"
    blocks = text.split("\n\n")
    tail = blocks.pop()
    if complete:
        assert tail == "", f"body does not end with a blank line: {tail[-200:]!r}"
    assert blocks, "empty SSE body"
    first = re.fullmatch(r"retry: ([0-9]+)", blocks[0])
    assert first is not None, f"stream does not open with retry: {blocks[0]!r}"
    items: list[Ev | str] = []
    for block in blocks[1:]:
        raw = block + "\n"
        if block.startswith(":"):
            assert re.fullmatch(r": [^\n]*\n", raw), f"bad comment block {block!r}"
            items.append(block[2:])
            continue
        match = _EVENT_BLOCK.fullmatch(raw)
        if match is not None:
            assert match.group("event") in EVENT_TYPES, match.group("event")
            data = json.loads(match.group("data"))
            assert isinstance(data, dict)
            items.append(Ev(match.group("id"), match.group("event"), data))
            continue
        error = _ERROR_BLOCK.fullmatch(raw)
        assert error is not None, f"bad SSE block {block!r}"
        items.append(Ev(None, "error", json.loads(error.group("data"))))
    return WireStream(int(first.group(1)), items)


async def create_job(client: httpx.AsyncClient, body: Mapping[str, object]) -> str:
    """``POST /api/jobs`` that must answer 202; the new job's id."""
    response = await client.post("/api/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id
