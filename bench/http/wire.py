"""A minimal HTTP/1.1 and Server-Sent Events client on raw trio sockets.

Just enough for the benchmark, and cheap per connection: requests are sent
with ``Connection: close`` (plain requests) or kept open (event streams),
chunked bodies are decoded incrementally, and the SSE parser only splits
frames into their ``id``, ``event`` and ``data`` fields (it does not decode
the JSON), so a load process can follow thousands of streams.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import trio

_MAX_HEADER = 65536


class HttpError(Exception):
    """A response that could not be read."""


@dataclass(slots=True)
class Response:
    """A complete response to a plain request."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


class ChunkedDecoder:
    """Incremental decoder of a ``Transfer-Encoding: chunked`` body."""

    def __init__(self) -> None:
        self._buffer = b""
        self._remaining = 0  # bytes of the current chunk's data still to come
        self._crlf_pending = False
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        """Decode ``data``; return the payload bytes it completes."""
        if self.finished:
            return b""
        buffer = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        pos = 0
        size = len(buffer)
        while pos < size:
            if self._remaining:
                take = min(self._remaining, size - pos)
                out.append(buffer[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._crlf_pending = True
                continue
            if self._crlf_pending:
                if size - pos < 2:
                    break
                pos += 2
                self._crlf_pending = False
                continue
            end = buffer.find(b"\r\n", pos)
            if end < 0:
                break
            length = int(buffer[pos:end].split(b";", 1)[0], 16)
            pos = end + 2
            if length == 0:
                self.finished = True
                pos = size
                break
            self._remaining = length
        self._buffer = buffer[pos:]
        return b"".join(out)


@dataclass(slots=True)
class SseEvent:
    """One parsed event: its ``id`` (``""`` if none), ``event`` type and raw ``data``."""

    id: str
    event: str
    data: str


class SseParser:
    """Splits an event stream into :class:`SseEvent` objects (LF or CRLF line ends)."""

    def __init__(self) -> None:
        self._buffer = b""
        self.comments = 0

    def feed(self, data: bytes) -> list[SseEvent]:
        """Parse ``data``; return the events it completes."""
        buffer = (self._buffer + data).replace(b"\r\n", b"\n")
        if buffer.endswith(b"\r"):  # the LF of a CRLF may come in the next chunk
            self._buffer = buffer[-1:]
            buffer = buffer[:-1]
        else:
            self._buffer = b""
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop() + self._buffer
        events = []
        for block in blocks:
            event_id, event_type, data_lines = "", "message", []
            for line in block.decode().split("\n"):
                name, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if name == "id":
                    event_id = value
                elif name == "event":
                    event_type = value
                elif name == "data":
                    data_lines.append(value)
                elif name == "":
                    self.comments += 1
            if data_lines:
                events.append(SseEvent(event_id, event_type, "\n".join(data_lines)))
        return events


def _request_bytes(
    method: str, host: str, port: int, path: str, body: bytes | None, headers: dict[str, str]
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if body is not None:
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head + (body or b"")


async def _read_head(stream: trio.SocketStream) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise HttpError("connection closed before the response head")
        data += chunk
        if len(data) > _MAX_HEADER:
            raise HttpError("response head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


async def request(host: str, port: int, method: str, path: str, payload: Any = None) -> Response:
    """Send one request on a new connection and read the whole response."""
    body = None if payload is None else json.dumps(payload).encode()
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(
            _request_bytes(method, host, port, path, body, {"Connection": "close"})
        )
        status, headers, rest = await _read_head(stream)
        chunks = [rest]
        length = headers.get("content-length")
        received = len(rest)
        while length is None or received < int(length):
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    raw = b"".join(chunks)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        raw = ChunkedDecoder().feed(raw)
    return Response(status, headers, raw)


class SseStream:
    """One open event stream. Create with :func:`open_sse`; read with :meth:`receive`."""

    def __init__(
        self, stream: trio.SocketStream, status: int, headers: dict[str, str], rest: bytes
    ) -> None:
        self.stream = stream
        self.status = status
        self.headers = headers
        self.parser = SseParser()
        self._chunked = (
            ChunkedDecoder() if headers.get("transfer-encoding", "").lower() == "chunked" else None
        )
        self._pending = rest
        self.closed = False

    async def receive(self) -> list[SseEvent]:
        """Wait for more bytes; return the events they complete. ``closed`` is set at EOF."""
        if self._pending:
            data, self._pending = self._pending, b""
        else:
            data = await self.stream.receive_some(65536)
            if not data:
                self.closed = True
                return []
        if self._chunked is not None:
            data = self._chunked.feed(data)
            if self._chunked.finished:
                self.closed = True
        return self.parser.feed(data)

    async def aclose(self) -> None:
        """Close the connection."""
        await self.stream.aclose()


async def open_sse(
    host: str,
    port: int,
    path: str,
    last_event_id: str | None = None,
    *,
    local_address: str | None = None,
) -> SseStream:
    """Connect (from ``local_address`` if given), request ``path`` as an event stream and
    read the response head."""
    stream = await trio.open_tcp_stream(host, port, local_address=local_address)
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    try:
        await stream.send_all(_request_bytes("GET", host, port, path, None, headers))
        status, response_headers, rest = await _read_head(stream)
    except BaseException:
        await stream.aclose()
        raise
    return SseStream(stream, status, response_headers, rest)


def id_millis(event_id: str) -> int:
    """The ``unixMillis`` part of an event id ``<unixMillis>-<counter>``."""
    return int(event_id.partition("-")[0])
