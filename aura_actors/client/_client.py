"""The async client: REST calls, SSE streams with reconnect, the WebSocket view."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import trio

from .. import __version__
from ._errors import ConnectionFailed, ProtocolError, api_error_from_response
from ._events import Event
from ._models import Health, JobLogs, JobPage, JobSnapshot, JobStatus, parse_answer
from ._resume import OnReconnect, ReconnectPolicy
from ._stream import EventStream
from ._websocket import JobSocket

__all__ = ["DEFAULT_URL", "AuraClient"]

#: Where ``aura-actors serve`` listens by default.
DEFAULT_URL = "http://127.0.0.1:8000"


def _job_path(job_id: str, suffix: str = "") -> str:
    return f"/api/jobs/{quote(job_id, safe='')}{suffix}"


class AuraClient:
    """An async (trio) client of an aura-actors server.

    Use it as an async context manager so its connections are closed::

        async with AuraClient("http://127.0.0.1:8000", token=None) as client:
            job = await client.create_job("video", {"topic": "Tides"})
            async with client.events(job.id) as stream:
                async for event in stream:
                    print(event.type, event.data)

    Every ``async`` method is a checkpoint: cancelling the calling task (or a
    scope around the call) abandons the request at once and closes its
    connection. REST calls are made once (no retries); they raise an
    :class:`~aura_actors.client.ApiError` subclass for an error status,
    :class:`~aura_actors.client.ConnectionFailed` when the server cannot be
    reached and :class:`~aura_actors.client.ProtocolError` for an answer that
    is not the API's.

    :param base_url: the server, e.g. ``"http://127.0.0.1:8000"`` (a path prefix is kept).
    :param token: sent as ``Authorization: Bearer <token>`` when given.
    :param timeout: seconds for each REST call (connect, read, write).
    :param reconnect: the default :class:`ReconnectPolicy` of streams.
    :param transport: an httpx transport to use instead of the network (tests).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        reconnect: ReconnectPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": f"aura-actors-client/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = httpx.URL(base_url)
        self.token = token
        self.reconnect = reconnect or ReconnectPolicy()
        kwargs: dict[str, Any] = {}
        if transport is not None:
            kwargs["transport"] = transport
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, **kwargs
        )

    async def __aenter__(self) -> AuraClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection of the client (streams still open stop working)."""
        await self._http.aclose()

    # -- REST -----------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        empty_ok: bool = False,
    ) -> Any:
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as error:
            raise ConnectionFailed(f"{method} {self.base_url.join(path)}: {error}") from error
        if response.status_code >= 400:
            raise api_error_from_response(response)
        if empty_ok and response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise ProtocolError(
                f"{method} {path}: answer is not JSON: {response.text[:200]!r}"
            ) from None

    async def create_job(
        self, pipeline: str, params: Mapping[str, Any] | None = None
    ) -> JobSnapshot:
        """Start a job (``POST /api/jobs``); it runs at once or waits as ``Queued``.

        Raises :class:`~aura_actors.client.ValidationFailed` (unknown pipeline,
        bad params; see its ``details``), :class:`~aura_actors.client.QueueFull`,
        :class:`~aura_actors.client.ServerUnavailable` (shutting down).
        """
        body = {"pipeline": pipeline, "params": dict(params or {})}
        answer = await self._request("POST", "/api/jobs", json=body)
        return parse_answer(JobSnapshot, answer, "POST /api/jobs")

    async def get_job(self, job_id: str) -> JobSnapshot:
        """A job's snapshot; :class:`~aura_actors.client.NotFound` if unknown."""
        path = _job_path(job_id)
        return parse_answer(JobSnapshot, await self._request("GET", path), f"GET {path}")

    async def cancel_job(self, job_id: str) -> JobSnapshot:
        """Cancel a ``Queued`` or ``Running`` job; the answer may still say ``Running``.

        The job's stream then ends with ``job-cancelled``. Raises
        :class:`~aura_actors.client.Conflict` if the job already ended and
        :class:`~aura_actors.client.NotFound` if it is unknown.
        """
        path = _job_path(job_id, "/cancel")
        return parse_answer(JobSnapshot, await self._request("POST", path), f"POST {path}")

    async def delete_job(self, job_id: str) -> None:
        """Delete a finished job (``DELETE /api/jobs/{id}``): its record, history and files.

        From then on the job is :class:`~aura_actors.client.NotFound`. Raises
        :class:`~aura_actors.client.Conflict` (code ``job_not_finished``) while
        it is ``Queued`` or ``Running`` (cancel it first) and
        :class:`~aura_actors.client.NotFound` if it is unknown.
        """
        path = _job_path(job_id)
        await self._request("DELETE", path, empty_ok=True)

    async def retry_job(self, job_id: str) -> JobSnapshot:
        """Run a ``Failed`` or ``Canceled`` job again (``POST /api/jobs/{id}/retry``).

        Returns the snapshot of the *new* job: same pipeline and params, its own
        id, ``retry_of`` set to ``job_id``. Raises
        :class:`~aura_actors.client.Conflict` (code ``job_not_retryable``) for a
        job that is live or ended ``Done``, :class:`~aura_actors.client.NotFound`
        if it is unknown, and what :meth:`create_job` raises (a full queue...).
        """
        path = _job_path(job_id, "/retry")
        return parse_answer(JobSnapshot, await self._request("POST", path), f"POST {path}")

    async def job_logs(self, job_id: str) -> JobLogs:
        """The job's log (``GET /api/jobs/{id}/logs``): ``lines``, oldest first.

        The server keeps the most recent lines only (bounded), so a long job's
        first lines may be gone. :class:`~aura_actors.client.NotFound` if unknown.
        """
        path = _job_path(job_id, "/logs")
        return parse_answer(JobLogs, await self._request("GET", path), f"GET {path}")

    async def list_jobs(
        self,
        *,
        status: JobStatus | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of the caller's jobs, newest first (``GET /api/jobs``).

        ``limit`` is 1-200 (server default 50); pass the page's ``next_cursor``
        as ``cursor`` for the next page.
        """
        params: dict[str, str | int] = {}
        if status is not None:
            params["status"] = JobStatus(status).value
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        body = await self._request("GET", "/api/jobs", params=params)
        return parse_answer(JobPage, body, "GET /api/jobs")

    async def iter_jobs(
        self, *, status: JobStatus | str | None = None, page_size: int | None = None
    ) -> AsyncIterator[JobSnapshot]:
        """Every job of the caller, newest first, fetching page after page as needed.

        An async generator; it holds no connection between pages, so breaking
        out of the loop needs no cleanup.
        """
        cursor: str | None = None
        while True:
            page = await self.list_jobs(status=status, limit=page_size, cursor=cursor)
            for job in page.jobs:
                yield job
            if page.next_cursor is None or not page.jobs:
                return
            cursor = page.next_cursor

    async def health(self) -> Health:
        """``GET /api/health``: ``status`` (``"ok"``), ``version``, ``jobs``, ``subscribers``."""
        return parse_answer(Health, await self._request("GET", "/api/health"), "GET /api/health")

    # -- streams --------------------------------------------------------------------------

    def events(
        self,
        job_id: str,
        *,
        last_event_id: str | None = None,
        reconnect: ReconnectPolicy | None = None,
        on_reconnect: OnReconnect | None = None,
    ) -> EventStream:
        """One job's events (``GET /api/jobs/{id}/events``), ending after its terminal event.

        Without ``last_event_id`` the stream starts with the job's retained
        history (from its first event); with one it starts right after it.
        Reconnects per ``reconnect`` (default: the client's policy), calling
        ``on_reconnect`` before each wait. Not a coroutine: it returns the
        :class:`EventStream` at once and connects on the first iteration.
        """
        return EventStream(
            self._http,
            _job_path(job_id, "/events"),
            last_event_id=last_event_id,
            policy=reconnect or self.reconnect,
            ends_with_job=True,
            on_reconnect=on_reconnect,
        )

    def all_events(
        self,
        *,
        last_event_id: str | None = None,
        reconnect: ReconnectPolicy | None = None,
        on_reconnect: OnReconnect | None = None,
    ) -> EventStream:
        """Every event of every job of the caller (``GET /api/events``); never ends on its own.

        Without ``last_event_id`` it starts at the moment of connection; with
        one, right after it. Otherwise like :meth:`events`.
        """
        return EventStream(
            self._http,
            "/api/events",
            last_event_id=last_event_id,
            policy=reconnect or self.reconnect,
            ends_with_job=False,
            on_reconnect=on_reconnect,
        )

    @asynccontextmanager
    async def websocket_events(
        self,
        job_id: str,
        *,
        last_event_id: str | None = None,
        reconnect: ReconnectPolicy | None = None,
        on_reconnect: OnReconnect | None = None,
    ) -> AsyncGenerator[JobSocket, None]:
        """One job's events over WebSocket, with :meth:`JobSocket.cancel` on the same socket.

        ::

            async with client.websocket_events(job_id) as socket:
                async for event in socket:
                    if want_to_stop:
                        await socket.cancel()

        The socket runs in a task of this block's nursery; leaving the block
        closes it. Reconnects and resumes like :meth:`events`.
        """
        scheme = "wss" if self.base_url.scheme == "https" else "ws"
        prefix = self.base_url.raw_path.decode("ascii").split("?")[0].rstrip("/")
        url = str(self.base_url.copy_with(scheme=scheme, raw_path=None, query=None, fragment=None))
        url = url.rstrip("/") + prefix + _job_path(job_id, "/ws")
        headers = [(b"User-Agent", f"aura-actors-client/{__version__}".encode())]
        if self.token:
            headers.append((b"Authorization", f"Bearer {self.token}".encode()))
        socket = JobSocket(
            job_id=job_id,
            url=url,
            headers=headers,
            last_event_id=last_event_id,
            policy=reconnect or self.reconnect,
            rest_cancel=lambda: self.cancel_job(job_id),
            on_reconnect=on_reconnect,
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(socket.run)
                try:
                    yield socket
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The socket's task hands its errors to the reader, so a group here wraps
            # the block's own exception: raise that, as if there were no nursery.
            if len(group.exceptions) != 1:
                raise
            single = group.exceptions[0]
            raise single from single.__cause__

    async def wait(self, job_id: str, *, last_event_id: str | None = None) -> Event | None:
        """Follow a job's events to its terminal event and return that (``None`` on 204)."""
        async with self.events(job_id, last_event_id=last_event_id) as stream:
            async for event in stream:
                if event.is_terminal:
                    return event
        return None
