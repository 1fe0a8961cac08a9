"""``aura-actors serve``: the runtime and the app on Hypercorn's trio worker, with shutdown."""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import struct
import sys
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import hypercorn.trio.run as hypercorn_run
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.events import Closed, RawData
from hypercorn.events import Event as HypercornEvent
from hypercorn.trio import serve as hypercorn_serve
from hypercorn.trio.tcp_server import TCPServer

from ..pipelines import default_pipelines
from ..runtime import Runtime, StorageUnavailable, open_runtime
from ._app import create_app
from ._auth import load_tokens
from ._settings import ServerSettings

logger = logging.getLogger("aura_actors.server")

DEMO_TOPICS = (
    "How octopuses taste with their arms",
    "The history of the paperclip",
    "Why the sky is blue",
    "A day in the life of a honeybee",
    "Building a sundial",
)


#: Seconds past Hypercorn's graceful timeout before connections still open are cut.
CUT_MARGIN = 0.25

_live_connections: weakref.WeakSet[TCPServer] = weakref.WeakSet()


class _TrackedTCPServer(TCPServer):
    """Hypercorn's connection handler, remembered while it runs so shutdown can cut it.

    Hypercorn writes to the socket inside a cancel-shielded scope, so a client
    that stopped reading keeps its connection's task blocked in ``send_all``
    through the graceful timeout's cancellation, and the server never exits.
    Closing the socket is the one thing that wakes such a write.
    """

    async def run(self) -> None:
        _live_connections.add(self)
        try:
            await super().run()
        finally:
            _live_connections.discard(self)

    async def protocol_send(self, event: HypercornEvent) -> None:
        """Hypercorn's write, minus the layers a plain TCP socket does not need.

        Every SSE frame and WebSocket message of every subscriber comes through
        here, so it is the hottest function of a busy server. The semantics are
        Hypercorn's: one write at a time (its lock), shielded from cancellation,
        a broken or closed socket closes the protocol. What goes is, for a write
        the socket takes at once (nearly all of them), the shielding cancel scope
        (a synchronous write cannot be cancelled) and trio's async socket
        machinery around one ``send`` (its conflict detector, generator-based
        error translator and memoryview); the rest of a write that did not fit
        goes out as before, shielded. The scheduling is deliberately unchanged:
        one yield to take the lock, one after the write. With fewer, a reader
        keeps pace with a job that reports without pause and receives
        ``step-progress`` events that a slower reader (and the compacted history
        a resume replays) never sees; tests comparing a live stream with its
        resumed tail rely on the pace as it is.
        """
        stream: object = self.stream
        if type(event) is not RawData or not isinstance(stream, trio.SocketStream):
            await super().protocol_send(event)
            return
        async with self.send_lock:
            try:
                data = event.data
                sock = stream.socket
                # Most writes fit the socket's buffer: one plain, non-blocking write,
                # which nothing can cancel half-way, and no cancel scope to enter.
                sent = _write_now(sock, data)
                if sent < len(data):
                    with trio.CancelScope(shield=True):
                        await _send_all(sock, memoryview(data)[sent:])
                else:
                    # The scheduler round trip trio's ``send`` makes (uncancellable, as
                    # in the shielded original): other tasks, such as the job whose
                    # events these are, run between two writes as they always have.
                    await trio.lowlevel.cancel_shielded_checkpoint()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await self.protocol.handle(Closed())

    async def _read_data(self) -> None:
        await super()._read_data()
        # The peer is gone (or the connection was closed): every stream on it has
        # been told so. Do not let what is left, such as Hypercorn's WebSocket ping
        # loop sleeping out its 20 s interval, hold the connection (and a server
        # that is shutting down) open.
        nursery = getattr(getattr(self, "_task_group", None), "_nursery", None)
        if isinstance(nursery, trio.Nursery):
            nursery.cancel_scope.cancel()


def _write_now(sock: trio.socket.SocketType, data: bytes) -> int:
    """Write what the (non-blocking) socket takes at once; how many bytes, or the stream error."""
    if sock.did_shutdown_SHUT_WR:
        raise trio.ClosedResourceError("can't send data after sending EOF")
    try:
        return os.write(sock.fileno(), data)
    except BlockingIOError:
        return 0
    except OSError as exc:
        if exc.errno in _CLOSED_SOCKET_ERRNOS:
            raise trio.ClosedResourceError("this socket was already closed") from None
        raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc


async def _send_all(sock: trio.socket.SocketType, data: bytes | memoryview) -> None:
    """``SocketStream.send_all`` for one writer: every byte, or the stream error."""
    if sock.did_shutdown_SHUT_WR:
        raise trio.ClosedResourceError("can't send data after sending EOF")
    try:
        sent = await sock.send(data)
        if sent < len(data):
            with memoryview(data) as view:
                while sent < len(view):
                    sent += await sock.send(view[sent:])
    except OSError as exc:
        if exc.errno in _CLOSED_SOCKET_ERRNOS:
            raise trio.ClosedResourceError("this socket was already closed") from None
        raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc


#: What a write to a socket closed under it fails with (as trio's ``SocketStream``).
_CLOSED_SOCKET_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})


#: Allocations between young-generation collections (CPython's default is 700).
GC_GEN0_THRESHOLD = 50_000


async def _tune_gc_while_serving() -> None:
    """Make the cyclic GC cheaper while the server runs; undone when it stops.

    Everything alive once the server listens (modules, the app, its routes)
    lives as long as the server: :func:`gc.freeze` moves it out of the
    collector's sight, so the full collections that many open streams trigger
    no longer walk it (they were the 99th-percentile latency: pauses of tens of
    milliseconds). Each event and each frame allocate short-lived objects, so
    a young-generation collection every 700 allocations ran hundreds of times
    a second under load; a higher threshold makes them rarer.
    """
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, threshold[1], threshold[2])
    try:
        await trio.sleep_forever()
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _install_connection_tracking() -> None:
    if getattr(hypercorn_run, "TCPServer", None) is TCPServer:
        setattr(hypercorn_run, "TCPServer", _TrackedTCPServer)  # noqa: B010 - not exported


def _cut_connections(app: Any) -> int:
    """Abort (RST) every open connection of ``app``; return how many were cut."""
    cut = 0
    for connection in list(_live_connections):
        if getattr(getattr(connection, "app", None), "app", None) is not app:
            continue
        stream = connection.stream
        sock = getattr(stream, "socket", None)
        if sock is None:  # pragma: no cover - TLS, which we do not serve
            sock = getattr(getattr(stream, "transport_stream", None), "socket", None)
        if sock is None or sock.fileno() == -1:
            continue
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        cut += 1
    return cut


def hypercorn_config(settings: ServerSettings) -> HypercornConfig:
    """Hypercorn's settings for ours (no access log: its lines would carry query tokens)."""
    config = HypercornConfig()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = settings.graceful_timeout
    config.websocket_ping_interval = settings.websocket_ping_interval
    config.keep_alive_timeout = 75
    return config


async def submit_demo_jobs(runtime: Runtime, count: int) -> None:
    """Submit ``count`` ``video`` jobs so a newcomer sees something move."""
    for index in range(count):
        topic = DEMO_TOPICS[index % len(DEMO_TOPICS)]
        job = await runtime.submit("video", {"topic": topic, "durationSeconds": 30 + 15 * index})
        print(f"  demo job {job.id}: {topic}", flush=True)


async def serve(
    settings: ServerSettings,
    *,
    on_listening: Callable[[str], None] | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    on_runtime: Callable[[Runtime], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``shutdown_trigger`` returns), then shut down gracefully.

    Shutdown refuses new jobs with 503, cancels running ones (their streams
    get ``job-cancelled``), ends every stream, and gives in-flight requests
    ``graceful_timeout`` seconds before cutting them; a connection still open
    then (a client that stopped reading) is aborted, so the server always
    ends. ``on_runtime`` is handed the runtime once it runs (for tests and
    embedding).

    Raises :class:`OSError` itself (not inside an exception group) when the
    address cannot be bound, so a caller can say so plainly.
    """
    try:
        await _serve(settings, on_listening, shutdown_trigger, on_runtime)
    except BaseExceptionGroup as group:
        sole = _sole_leaf(group)
        if isinstance(sole, OSError):
            raise sole from None
        raise
    logger.info("stopped")
    sys.stdout.flush()


def _sole_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception inside nested groups, or ``None`` if there are several."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    return leaves[0] if len(leaves) == 1 else None


async def _serve(
    settings: ServerSettings,
    on_listening: Callable[[str], None] | None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None,
    on_runtime: Callable[[Runtime], None] | None,
) -> None:
    tokens = load_tokens(settings.auth_tokens) if settings.auth_tokens is not None else None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _install_connection_tracking()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        config = settings.runtime_config()
        async with open_runtime(config, default_pipelines()) as runtime:
            if on_runtime is not None:
                on_runtime(runtime)
            app = create_app(runtime, settings, tokens)

            async with trio.open_nursery() as nursery:

                async def cut_stragglers() -> None:
                    # Hypercorn cancels in-flight requests after graceful_timeout;
                    # a write blocked on a client that stopped reading ignores it.
                    await trio.sleep(settings.graceful_timeout + CUT_MARGIN)
                    cut = _cut_connections(app)
                    if cut:
                        logger.warning(
                            "cut connections that did not finish in time", extra={"count": cut}
                        )

                async def stop_when_asked() -> None:
                    if shutdown_trigger is not None:
                        async with trio.open_nursery() as race:

                            async def by_trigger() -> None:
                                await shutdown_trigger()
                                race.cancel_scope.cancel()

                            async def by_signal() -> None:
                                async for _ in signals:
                                    race.cancel_scope.cancel()

                            race.start_soon(by_trigger)
                            race.start_soon(by_signal)
                    else:
                        async for signum in signals:
                            logger.info("signal received", extra={"signal": signum})
                            break
                    logger.info("shutting down")
                    await runtime.shutdown()
                    nursery.start_soon(cut_stragglers)

                async def run_hypercorn(*, task_status: trio.TaskStatus[list[str]]) -> None:
                    try:
                        await hypercorn_serve(
                            app,
                            hypercorn_config(settings),
                            shutdown_trigger=stop_when_asked,
                            task_status=task_status,
                        )
                    finally:
                        nursery.cancel_scope.cancel()

                binds = await nursery.start(run_hypercorn)
                nursery.start_soon(_tune_gc_while_serving)
                url = binds[0] if binds else f"http://{settings.host}:{settings.port}"
                print(f"aura-actors listening on {url}", flush=True)
                if on_listening is not None:
                    on_listening(url)
                if settings.demo_jobs:
                    print(f"submitting {settings.demo_jobs} demo video jobs:", flush=True)
                    await submit_demo_jobs(runtime, settings.demo_jobs)
                    print(f"watch them: curl -N {url}/api/events  (or open {url}/)", flush=True)
    if runtime.broadcaster.lost_records:
        raise StorageUnavailable(
            f"{runtime.broadcaster.lost_records} acknowledged records could not be written "
            f"to {config.store_path}: storage failed until shutdown"
        )
