"""``aura-actors serve``: the runtime and the app on Hypercorn's trio worker, with shutdown."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from quart_trio import QuartTrio

from ..pipelines import default_pipelines
from ..runtime import Runtime, StorageUnavailable, open_runtime
from ._app import create_app
from ._auth import load_tokens
from ._budget import ConnectionBudget, default_max_connections, raise_open_file_limit
from ._hypercorn import check_version, serve_app
from ._metrics import ServerMetrics
from ._penalty import PenaltyBox, punishing_oversized_frames
from ._settings import ServerSettings

logger = logging.getLogger("aura_actors.server")

DEMO_TOPICS = (
    "How octopuses taste with their arms",
    "The history of the paperclip",
    "Why the sky is blue",
    "A day in the life of a honeybee",
    "Building a sundial",
)


#: A WebSocket client frame (message) above this closes the connection with 1009.
MAX_WEBSOCKET_MESSAGE = 64 * 1024

#: The listen backlog when none is set (the kernel's ``somaxconn`` caps it if lower).
DEFAULT_BACKLOG = 1024

#: Allocations between young-generation collections (CPython's default is 700).
GC_GEN0_THRESHOLD = 50_000


@contextlib.contextmanager
def gc_tuned() -> Iterator[None]:
    """Make the cyclic GC cheaper inside the ``with`` block; undone when it ends.

    Everything alive when the server starts (modules, the app, its routes, the
    runtime) lives as long as the server: :func:`gc.freeze` moves it out of
    the collector's sight, so the full collections that many open streams
    trigger no longer walk it (they were the 99th-percentile latency: pauses
    of tens of milliseconds). Each event and each frame allocate short-lived
    objects, so a young-generation collection every 700 allocations ran
    hundreds of times a second under load; a higher threshold makes them
    rarer. Process-wide, hence an option of ``serve`` (``--gc-freeze``).
    """
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def default_backlog(somaxconn: Path = Path("/proc/sys/net/core/somaxconn")) -> int:
    """:data:`DEFAULT_BACKLOG`, or the kernel's cap on a listen backlog if lower."""
    try:
        cap = int(somaxconn.read_text())
    except (OSError, ValueError):
        return DEFAULT_BACKLOG
    return max(1, min(DEFAULT_BACKLOG, cap))


def hypercorn_config(settings: ServerSettings) -> HypercornConfig:
    """Hypercorn's settings for ours (no access log: its lines would carry query tokens)."""
    config = HypercornConfig()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = settings.graceful_timeout
    config.websocket_ping_interval = settings.websocket_ping_interval
    # Hypercorn's idle timeout runs from a connection's start (or its last answer)
    # until a request head is complete: the header timeout and the keep-alive one.
    config.keep_alive_timeout = settings.header_timeout
    # Checked as each frame arrives: a bigger frame is never buffered whole (close 1009).
    config.websocket_max_message_size = MAX_WEBSOCKET_MESSAGE
    # Hypercorn's 100 overflows under a burst of connects: each dropped one waits a
    # retransmission timeout (a second), whatever the server's load.
    config.backlog = settings.backlog or default_backlog()
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
    address cannot be bound, so a caller can say so plainly, and
    :class:`UntestedHypercorn` before anything else on a Hypercorn version its
    workarounds were not tested with.
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
    check_version()
    tokens = load_tokens(settings.auth_tokens) if settings.auth_tokens is not None else None
    settings.runtime.data_dir.mkdir(parents=True, exist_ok=True)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        config = settings.runtime
        metrics = ServerMetrics()
        penalty = PenaltyBox(settings.abuse_cooldown, capacity=settings.abuse_addresses)
        metrics.watch_penalty(penalty)
        async with open_runtime(config, default_pipelines(), observer=metrics) as runtime:
            if on_runtime is not None:
                on_runtime(runtime)
            app = create_app(runtime, settings, tokens, metrics)

            async def stop_when_asked() -> None:
                async with trio.open_nursery() as race:

                    async def by_trigger() -> None:
                        if shutdown_trigger is not None:
                            await shutdown_trigger()
                            race.cancel_scope.cancel()

                    async def by_signal() -> None:
                        async for signum in signals:
                            logger.info("signal received", extra={"signal": signum})
                            race.cancel_scope.cancel()

                    race.start_soon(by_trigger)
                    race.start_soon(by_signal)
                logger.info("shutting down")
                await runtime.shutdown()

            tuning = gc_tuned() if settings.gc_freeze else contextlib.nullcontext()
            with tuning:
                await _run_app(app, settings, runtime, penalty, stop_when_asked, on_listening)
    if runtime.broadcaster.lost_records:
        raise StorageUnavailable(
            f"{runtime.broadcaster.lost_records} acknowledged records could not be written "
            f"to {config.store_path}: storage failed until shutdown"
        )


async def _run_app(
    app: QuartTrio,
    settings: ServerSettings,
    runtime: Runtime,
    penalty: PenaltyBox,
    shutdown_trigger: Callable[[], Awaitable[None]],
    on_listening: Callable[[str], None] | None,
) -> None:
    """Serve ``app`` until ``shutdown_trigger`` returns; say where once listening."""
    raise_open_file_limit()
    limit = settings.max_connections or default_max_connections()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(
                serve_app,
                punishing_oversized_frames(app, penalty),
                hypercorn_config(settings),
                shutdown_trigger=shutdown_trigger,
                connections=ConnectionBudget(limit, penalty),
            )
        )
        url = binds[0] if binds else f"http://{settings.host}:{settings.port}"
        print(f"aura-actors listening on {url}", flush=True)
        data_dir = settings.runtime.data_dir.resolve()
        stored = runtime.job_count
        print(f"data dir: {data_dir} ({stored} job{'s' if stored != 1 else ''} stored)", flush=True)
        config = runtime.config
        if config.redis_url is not None:
            print(
                f"cluster node {config.node_name} ({config.role}), prefix {config.redis_prefix}",
                flush=True,
            )
        if on_listening is not None:
            on_listening(url)
        if settings.demo_jobs and runtime.job_count == 0:
            count = settings.demo_jobs
            print(f"submitting {count} demo video job{'s' if count != 1 else ''}:", flush=True)
            await submit_demo_jobs(runtime, count)
            print(f"watch them: curl -N {url}/api/events  (or open {url}/)", flush=True)
        elif settings.demo_jobs:
            print("demo jobs: not submitted, the data dir already holds jobs", flush=True)
