"""A thin blocking facade over :class:`~aura_actors.client.AuraClient`, for scripts.

Each call runs its own ``trio.run`` with a fresh connection, so it must not be
called from inside a running trio (or asyncio) loop; use the async client there.

::

    from aura_actors.client.sync import SyncClient

    client = SyncClient("http://127.0.0.1:8000")
    job = client.create_job("video", {"topic": "Tides"})
    final = client.follow(job.id, on_event=lambda event: print(event.type))
    print(final.type if final else client.get_job(job.id).status)

Errors are the async client's (:class:`~aura_actors.client.AuraError` and subclasses).
Ctrl-C during a call raises :class:`KeyboardInterrupt` as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import trio

from ._client import DEFAULT_URL, AuraClient
from ._events import Event
from ._models import JobLogs, JobPage, JobSnapshot, JobStatus
from ._resume import ReconnectPolicy

__all__ = ["SyncClient"]

T = TypeVar("T")


class SyncClient:
    """Blocking versions of the :class:`~aura_actors.client.AuraClient` calls.

    Same parameters as :class:`~aura_actors.client.AuraClient`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.timeout = timeout
        self.reconnect = reconnect

    def _run(self, call: Callable[[AuraClient], Awaitable[T]]) -> T:
        async def main() -> T:
            async with AuraClient(
                self.base_url, self.token, timeout=self.timeout, reconnect=self.reconnect
            ) as client:
                return await call(client)

        return trio.run(main)

    def create_job(self, pipeline: str, params: Mapping[str, Any] | None = None) -> JobSnapshot:
        """See :meth:`AuraClient.create_job <aura_actors.client.AuraClient.create_job>`."""
        return self._run(lambda client: client.create_job(pipeline, params))

    def get_job(self, job_id: str) -> JobSnapshot:
        """See :meth:`AuraClient.get_job <aura_actors.client.AuraClient.get_job>`."""
        return self._run(lambda client: client.get_job(job_id))

    def cancel_job(self, job_id: str) -> JobSnapshot:
        """See :meth:`AuraClient.cancel_job <aura_actors.client.AuraClient.cancel_job>`."""
        return self._run(lambda client: client.cancel_job(job_id))

    def delete_job(self, job_id: str) -> None:
        """See :meth:`AuraClient.delete_job <aura_actors.client.AuraClient.delete_job>`."""
        self._run(lambda client: client.delete_job(job_id))

    def retry_job(self, job_id: str) -> JobSnapshot:
        """See :meth:`AuraClient.retry_job <aura_actors.client.AuraClient.retry_job>`."""
        return self._run(lambda client: client.retry_job(job_id))

    def job_logs(self, job_id: str) -> JobLogs:
        """See :meth:`AuraClient.job_logs <aura_actors.client.AuraClient.job_logs>`."""
        return self._run(lambda client: client.job_logs(job_id))

    def list_jobs(
        self,
        *,
        status: JobStatus | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """See :meth:`AuraClient.list_jobs <aura_actors.client.AuraClient.list_jobs>`."""
        return self._run(lambda client: client.list_jobs(status=status, limit=limit, cursor=cursor))

    def follow(
        self,
        job_id: str,
        on_event: Callable[[Event], object] | None = None,
        *,
        last_event_id: str | None = None,
    ) -> Event | None:
        """Block until the job ends, calling ``on_event`` with each event as it comes.

        Returns the terminal event, or ``None`` when the server had nothing more
        to send (204: the job ended and its events expired). Reconnects like
        :meth:`AuraClient.events <aura_actors.client.AuraClient.events>`.
        """

        async def call(client: AuraClient) -> Event | None:
            async with client.events(job_id, last_event_id=last_event_id) as stream:
                async for event in stream:
                    if on_event is not None:
                        on_event(event)
                    if event.is_terminal:
                        return event
            return None

        return self._run(call)
