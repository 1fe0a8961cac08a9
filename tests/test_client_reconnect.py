"""The client's streams survive dropped connections and a killed server, against the real server.

A small TCP proxy between client and server cuts every connection through it
(FIN or RST) in the middle of a job, several times; the client resumes with
``Last-Event-ID`` and its events equal an uninterrupted subscriber's: every
event other than intermediate progress identical, in order, no gap, no
duplicate. (The contract lets a resumed stream skip intermediate
``step-progress`` events that the server compacted while the client was away,
never the latest before another event: so the lists are equal once each run of
progress events is reduced to its last one.)

The server process is also SIGKILLed and restarted on the same port several
times: ``all_events`` goes on across the restarts, and a job stream of a job
the new process does not know stops with ``NotFound``; killed for good, the
client raises ``ConnectionLost`` after its tries.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from support.servers import run_server, server_process

from aura_actors.client import (
    AuraClient,
    ConnectionLost,
    Event,
    EventStream,
    JobCompletedEvent,
    NotFound,
    ReconnectPolicy,
    StepProgressEvent,
)
from aura_actors.web import ServerSettings

# -- a TCP proxy that can cut its connections ---------------------------------------------


class CuttingProxy:
    """Forwards ``127.0.0.1:<port>`` to the target; :meth:`cut` drops every open connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self._open: dict[int, tuple[trio.CancelScope, list[trio.SocketStream]]] = {}
        self._frozen: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, downstream: trio.SocketStream) -> None:
        self.accepted += 1
        key = self.accepted
        try:
            upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        except OSError:
            await downstream.aclose()
            return
        with trio.CancelScope() as scope:
            self._open[key] = (scope, [downstream, upstream])
            try:
                async with trio.open_nursery() as nursery:
                    for source, sink in ((downstream, upstream), (upstream, downstream)):
                        nursery.start_soon(self._pump, key, source, sink, nursery.cancel_scope)
            finally:
                self._open.pop(key, None)
        for stream in (downstream, upstream):
            with contextlib.suppress(trio.ClosedResourceError):
                await trio.aclose_forcefully(stream)

    async def _pump(
        self, key: int, source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope
    ) -> None:
        try:
            while data := await source.receive_some(65536):
                if key in self._frozen:
                    await trio.sleep_forever()
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        done.cancel()

    def freeze(self) -> int:
        """Stop forwarding on every open connection but keep it open (a half-dead link)."""
        self._frozen.update(self._open)
        return len(self._open)

    def cut(self, *, reset: bool) -> int:
        """Drop every open connection (with RST when ``reset``, else FIN); return how many."""
        cut = 0
        for scope, streams in list(self._open.values()):
            if reset:
                for stream in streams:
                    with contextlib.suppress(OSError):
                        stream.socket.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
            scope.cancel()
            cut += 1
        return cut


@asynccontextmanager
async def proxy_to(port: int) -> AsyncIterator[CuttingProxy]:
    proxy = CuttingProxy(port)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        yield proxy
        nursery.cancel_scope.cancel()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def compact(events: list[Event]) -> list[Event]:
    out: list[Event] = []
    for event in events:
        if out and event.type == "step-progress" and out[-1].type == "step-progress":
            out[-1] = event
        else:
            out.append(event)
    return out


def assert_same_stream(got: list[Event], reference: list[Event]) -> None:
    """``got`` is ``reference`` with at most some intermediate progress left out."""
    keys = [event.key for event in got]
    assert all(a < b for a, b in itertools.pairwise(keys)), "duplicate or disorder"
    assert [e for e in got if e.type != "step-progress"] == [
        e for e in reference if e.type != "step-progress"
    ], "a non-progress event was lost"
    assert compact(got) == compact(reference)
    assert got[-1].is_terminal and reference[-1].is_terminal


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- cutting connections mid-job ------------------------------------------------------------

#: About 2 s of work in 3 stages of 40 ticks.
STEADY: dict[str, Any] = {"stages": 3, "ticks": 40, "tickSeconds": 0.015}
CUT_AFTER = (3, 12, 30, 55, 80)


async def test_sse_resumes_through_cut_connections_with_no_gap_or_duplicate(
    tmp_path: Path,
) -> None:
    # retry: 20 ms from the server is the base of the client's backoff.
    settings = ServerSettings.of(sse_retry_ms=20)
    async with (
        run_server(settings, data_dir=tmp_path) as server,
        proxy_to(port_of(server.url)) as proxy,
        AuraClient(server.url) as direct,
        # Nothing for 0.5 s on a connection counts as a drop (the job ticks every 15 ms).
        AuraClient(proxy.url, reconnect=ReconnectPolicy(idle_timeout=0.5)) as proxied,
    ):
        with trio.fail_after(30):
            job = await direct.create_job("synthetic", STEADY)
            reference: list[Event] = []
            got: list[Event] = []
            cuts = 0

            async def uninterrupted() -> None:
                async with direct.events(job.id) as stream:
                    reference.extend([event async for event in stream])

            async with trio.open_nursery() as nursery:
                nursery.start_soon(uninterrupted)
                stream = proxied.events(job.id)
                async with stream:
                    async for event in stream:
                        got.append(event)
                        if len(got) in CUT_AFTER:
                            # FIN, RST, then a connection that goes silent, and so on.
                            if cuts % 3 == 2:
                                assert proxy.freeze() == 1
                            else:
                                assert proxy.cut(reset=cuts % 3 == 1) == 1
                            cuts += 1
    assert cuts >= 4, f"the job ended after only {cuts} cuts; make it longer"
    assert stream.connections == cuts + 1
    assert_same_stream(got, reference)
    assert isinstance(got[-1], JobCompletedEvent)


async def test_websocket_resumes_through_cut_connections(tmp_path: Path) -> None:
    async with (
        run_server(data_dir=tmp_path) as server,
        proxy_to(port_of(server.url)) as proxy,
        AuraClient(server.url) as direct,
        AuraClient(proxy.url, reconnect=ReconnectPolicy(base_delay=0.02)) as proxied,
    ):
        with trio.fail_after(30):
            job = await direct.create_job("synthetic", STEADY)
            reference: list[Event] = []
            got: list[Event] = []
            cuts = 0

            async def uninterrupted() -> None:
                async with direct.websocket_events(job.id) as socket_:
                    reference.extend([event async for event in socket_])

            async with trio.open_nursery() as nursery:
                nursery.start_soon(uninterrupted)
                async with proxied.websocket_events(job.id) as socket_:
                    async for event in socket_:
                        got.append(event)
                        if len(got) in CUT_AFTER:
                            proxy.cut(reset=cuts % 2 == 0)
                            cuts += 1
    assert cuts >= 4
    assert socket_.connections == cuts + 1
    assert_same_stream(got, reference)


# -- killing the server process -----------------------------------------------------------

FAST_RETRY = ReconnectPolicy(base_delay=0.25, use_server_retry=False)


async def test_all_events_survives_sigkill_and_restart_on_the_same_port(tmp_path: Path) -> None:
    port = free_port()
    seen: list[Event] = []
    changed = trio.Event()
    doomed_job_lost = trio.Event()
    lives = 3

    async def wait_for(predicate: Callable[[], bool]) -> None:
        while not predicate():
            await changed.wait()

    def ended(job_id: str) -> Callable[[], bool]:
        return lambda: any(e.job_id == job_id and e.is_terminal for e in seen)

    def started(job_id: str) -> Callable[[], bool]:
        return lambda: any(e.job_id == job_id and e.type == "step-status" for e in seen)

    async with (
        AuraClient(f"http://127.0.0.1:{port}", reconnect=FAST_RETRY) as client,
        trio.open_nursery() as nursery,
    ):
        streams: list[EventStream] = []

        async def read_all_events(after: str | None) -> None:
            nonlocal changed
            streams.append(client.all_events(last_event_id=after))
            async for event in streams[0]:
                seen.append(event)
                changed.set()
                changed = trio.Event()

        async def follow_doomed(job_id: str) -> None:
            with pytest.raises(NotFound):
                async for _ in client.events(job_id):
                    pass
            doomed_job_lost.set()

        quick_ids: list[str] = []
        for life in range(lives + 1):
            async with server_process(tmp_path / f"life-{life}", port=port) as server:
                with trio.fail_after(20):
                    quick = await client.create_job("synthetic", {"ticks": 3, "tickSeconds": 0})
                    quick_ids.append(quick.id)
                    if life == 0:
                        # Everything after the first job's first event, across every restart.
                        nursery.start_soon(read_all_events, quick.last_event_id)
                    await wait_for(ended(quick.id))
                    if life == lives:
                        await doomed_job_lost.wait()  # its job is unknown to this server
                        break
                    running = await client.create_job("synthetic", {"tickSeconds": 600})
                    if life == 0:
                        nursery.start_soon(follow_doomed, running.id)
                    await wait_for(started(running.id))
                # Mid-job: the running job dies with the process.
                server.send_signal(signal.SIGKILL)
                assert await server.wait() == -signal.SIGKILL
        nursery.cancel_scope.cancel()

    assert streams[0].connections == lives + 1
    keys = [event.key for event in seen]
    assert all(a < b for a, b in itertools.pairwise(keys)), "duplicate or disorder"
    completed = [e.job_id for e in seen if isinstance(e, JobCompletedEvent)]
    assert completed == quick_ids
    for job_id in quick_ids[1:]:
        kinds = [str(e.type) for e in seen if e.job_id == job_id and e.type != "step-progress"]
        assert kinds[0] == "job-status" and kinds[-1] == "job-completed", kinds


async def test_a_server_killed_for_good_ends_in_connection_lost(tmp_path: Path) -> None:
    policy = ReconnectPolicy(base_delay=0.02, use_server_retry=False)
    async with (
        server_process(tmp_path) as server,
        AuraClient(server.url, reconnect=policy) as client,
    ):
        job = await client.create_job("synthetic", {"ticks": 1000, "tickSeconds": 0.01})
        got: list[Event] = []
        with trio.fail_after(20), pytest.raises(ConnectionLost) as raised:
            async with client.events(job.id) as stream:
                async for event in stream:
                    got.append(event)
                    if isinstance(event, StepProgressEvent) and server.process.returncode is None:
                        server.send_signal(signal.SIGKILL)
                        await server.wait()
    assert raised.value.attempts == 5
    assert raised.value.last_event_id == got[-1].id
    assert "gave up after 5 reconnection tries" in str(raised.value)
