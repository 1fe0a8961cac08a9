"""``aura-actors serve``: the runtime and the app on Hypercorn's trio worker, with shutdown."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from ..runtime import Runtime, open_runtime
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


def submit_demo_jobs(runtime: Runtime, count: int) -> None:
    """Submit ``count`` ``video`` jobs so a newcomer sees something move."""
    for index in range(count):
        topic = DEMO_TOPICS[index % len(DEMO_TOPICS)]
        job = runtime.submit("video", {"topic": topic, "durationSeconds": 30 + 15 * index})
        print(f"  demo job {job.id}: {topic}", flush=True)


async def serve(
    settings: ServerSettings,
    *,
    on_listening: Callable[[str], None] | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``shutdown_trigger`` returns), then shut down gracefully.

    Shutdown refuses new jobs with 503, cancels running ones (their streams
    get ``job-cancelled``), ends every stream, and gives in-flight requests
    ``graceful_timeout`` seconds before cutting them.
    """
    tokens = load_tokens(settings.auth_tokens) if settings.auth_tokens is not None else None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_runtime(settings.runtime_config()) as runtime:
            app = create_app(runtime, settings, tokens)

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

            async with trio.open_nursery() as nursery:
                binds = await nursery.start(
                    lambda task_status: hypercorn_serve(
                        app,
                        hypercorn_config(settings),
                        shutdown_trigger=stop_when_asked,
                        task_status=task_status,
                    )
                )
                url = binds[0] if binds else f"http://{settings.host}:{settings.port}"
                print(f"aura-actors listening on {url}", flush=True)
                if on_listening is not None:
                    on_listening(url)
                if settings.demo_jobs:
                    print(f"submitting {settings.demo_jobs} demo video jobs:", flush=True)
                    submit_demo_jobs(runtime, settings.demo_jobs)
                    print(f"watch them: curl -N {url}/api/events  (or open {url}/)", flush=True)
    logger.info("stopped")
    sys.stdout.flush()
