"""Shared fixtures and helpers of the runtime tests.

Time: tests about time take pytest-trio's ``autojump_clock`` (or
``thread_aware_autojump_clock`` when real work runs in a worker thread), so
seconds of trio time pass in microseconds. Nothing here sleeps to "let things
settle": tests wait on events (reading a subscription up to the event they
need) or on :func:`trio.testing.wait_all_tasks_blocked`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import pytest
import trio
import trio.testing
from support.redis import prefix  # noqa: F401 - the Redis tests' key prefix
from support.service import (  # noqa: F401 - fixtures of the HTTP contract tests
    client,
    cluster,
    cluster_or_none,
    parametrize_service,
    process_server,
    service,
    service_settings,
)

from aura_actors.pipelines import SyntheticPipeline, VideoPipeline
from aura_actors.runtime import (
    Event,
    EventId,
    EventIdGenerator,
    EventType,
    JobStatus,
    Pipeline,
    PipelineRegistry,
    Runtime,
    RuntimeConfig,
    Stage,
    Subscription,
    open_runtime,
)

StagesFactory = Callable[[dict[str, Any]], Sequence[Stage]]


class FnPipeline:
    """A test pipeline: params pass through unchecked, ``build`` calls ``factory(params)``."""

    def __init__(self, name: str, factory: StagesFactory) -> None:
        self.name = name
        self.factory = factory

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    def build(self, params: dict[str, Any]) -> Sequence[Stage]:
        return list(self.factory(params))


def one_stage(name: str, run: Callable[..., Any], **stage_options: Any) -> FnPipeline:
    """A pipeline called ``name`` of one stage (also called ``name``) running ``run``."""
    return FnPipeline(name, lambda params: [Stage(name, run, **stage_options)])


def registry(*extra: Pipeline) -> PipelineRegistry:
    """The built-in pipelines plus ``extra``."""
    return PipelineRegistry([VideoPipeline(), SyntheticPipeline(), *extra])


class RuntimeFactory(Protocol):
    def __call__(
        self,
        *pipelines: Pipeline,
        id_generator: EventIdGenerator | None = None,
        **config: Any,
    ) -> AbstractAsyncContextManager[Runtime]: ...


@pytest.fixture
def make_runtime(tmp_path: Path) -> RuntimeFactory:
    """``async with make_runtime(*extra_pipelines, **config) as rt``: a runtime on ``tmp_path``."""

    @asynccontextmanager
    async def factory(
        *pipelines: Pipeline,
        id_generator: EventIdGenerator | None = None,
        **config: Any,
    ) -> AsyncIterator[Runtime]:
        config.setdefault("data_dir", tmp_path)
        async with open_runtime(
            RuntimeConfig(**config), registry(*pipelines), id_generator=id_generator
        ) as runtime:
            yield runtime

    return factory


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime with the built-in pipelines, owned by the fixture's own task and nursery."""
    config = RuntimeConfig(data_dir=tmp_path, max_concurrent_jobs=64)
    async with open_runtime(config, registry()) as rt:
        yield rt


@pytest.fixture
def thread_aware_autojump_clock(monkeypatch: pytest.MonkeyPatch) -> trio.testing.MockClock:
    """An autojump clock that stands still while real work runs in a worker thread.

    Plain autojump treats the run loop waiting for a thread as idle and jumps
    to the next deadline (a stall watchdog's, say) while the thread is still
    working in real time. This clock turns autojump off for as long as any
    :func:`trio.to_thread.run_sync` call is in flight.
    """
    clock = trio.testing.MockClock(autojump_threshold=0)
    real_run_sync = trio.to_thread.run_sync
    in_flight = 0

    async def run_sync(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_flight
        in_flight += 1
        clock.autojump_threshold = math.inf
        try:
            return await real_run_sync(*args, **kwargs)
        finally:
            in_flight -= 1
            if in_flight == 0:
                clock.autojump_threshold = 0

    monkeypatch.setattr(trio.to_thread, "run_sync", run_sync)
    return clock


# -- reading streams ----------------------------------------------------------------------


async def collect(subscription: Subscription) -> list[Event]:
    """Every event until the subscription ends."""
    return [event async for event in subscription]


async def read_until(subscription: Subscription, predicate: Callable[[Event], bool]) -> list[Event]:
    """Events up to and including the first one that satisfies ``predicate``."""
    events: list[Event] = []
    async for event in subscription:
        events.append(event)
        if predicate(event):
            return events
    raise AssertionError(f"stream ended before the awaited event; got {summary(events)}")


def is_type(*types: EventType) -> Callable[[Event], bool]:
    return lambda event: event.type in types


def is_terminal(event: Event) -> bool:
    return event.type.is_terminal


async def job_events(runtime: Runtime, job_id: str) -> list[Event]:
    """A job's stream from its retained history to its terminal event."""
    with await runtime.subscribe_job(job_id) as subscription:
        return await collect(subscription)


async def ready_events(subscription: Subscription) -> list[Event]:
    """What ``subscription`` gives until it would wait: its whole replay, and any live events.

    A replay is read from storage lazily, as the reader goes, so ``pending`` does
    not count it; this reads in a task until every task is blocked, then stops it
    (a cancelled receive loses nothing).
    """
    events: list[Event] = []

    async def read() -> None:
        async for event in subscription:
            events.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return events


async def stored_events(runtime: Runtime, job_id: str, after: EventId | None = None) -> list[Event]:
    """The events of ``job_id`` its storage retains after ``after`` (all when ``None``)."""
    await runtime.broadcaster.barrier()
    return await runtime.storage.job_events(job_id, after, 1_000_000)


async def status_of(runtime: Runtime, job_id: str) -> JobStatus:
    """The job's status as the runtime answers for it now (live, or as stored)."""
    return (await runtime.get(job_id)).status


def of_type(events: Iterable[Event], *types: EventType) -> list[Event]:
    return [event for event in events if event.type in types]


def non_progress(events: Iterable[Event]) -> list[Event]:
    return [event for event in events if event.type is not EventType.STEP_PROGRESS]


def summary(events: Iterable[Event]) -> list[tuple[str | None, str]]:
    """``(id, type)`` pairs, for readable assertion messages."""
    return [(event.id_text, event.type.value) for event in events]


def assert_strictly_increasing(events: Sequence[Event]) -> None:
    ids = [event.id for event in events if event.id is not None]
    for earlier, later in itertools.pairwise(ids):
        assert earlier < later, f"ids out of order: {earlier} then {later}"


def latest_progress_before_each_event(events: Sequence[Event]) -> list[Event]:
    """For every non-progress event, the progress event right before it (if any)."""
    wanted: list[Event] = []
    previous: Event | None = None
    for event in events:
        if (
            event.type is not EventType.STEP_PROGRESS
            and previous is not None
            and previous.type is EventType.STEP_PROGRESS
        ):
            wanted.append(previous)
        previous = event
    return wanted


# -- the service a contract test talks to (support/service.py) ---------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "one_process(reason): the test runs against the one-process server only"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_service(metafunc)
