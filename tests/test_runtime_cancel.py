"""Cancel: in a sleep, a subprocess (and its children), a thread, while queued; refusals.

The sleep, subprocess and thread tests run on the real clock and print how
long each took from ``cancel()`` to the ``job-cancelled`` event (``-s``).
"""

from __future__ import annotations

import os
import threading
import time
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing
from conftest import (
    RuntimeFactory,
    collect,
    is_terminal,
    job_events,
    one_stage,
    read_until,
    registry,
    status_of,
    stored_events,
)

from aura_actors.runtime import (
    CANCELED_BY_USER,
    Commit,
    Event,
    EventType,
    JobAlreadyFinished,
    JobNotFound,
    JobStatus,
    MemoryStorage,
    Runtime,
    RuntimeConfig,
    StageContext,
    Subscription,
    open_runtime,
)

#: Generous bound for a cancel to take effect on a loaded CI machine; typical is < 5 ms.
PROMPT = 1.0


def _process_state(pid: int) -> str | None:
    """The state letter of ``pid`` and its parent, from /proc; ``None`` once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return f"{fields[0]} ppid={fields[1]}"


async def _wait_dead(pid: int) -> str | None:
    """Wait (bounded) until ``pid`` is gone, or a zombie that is not ours to reap."""
    with trio.move_on_after(5):
        while True:
            state = _process_state(pid)
            if state is None or (state.startswith("Z") and f"ppid={os.getpid()}" not in state):
                return state
            await trio.sleep(0.005)  # polling the kernel, not waiting for the runtime
    raise AssertionError(f"process {pid} still alive after cancel: {_process_state(pid)}")


async def _cancel_and_time(
    rt: Runtime, job_id: str, subscription: Subscription
) -> tuple[float, Event]:
    t0 = time.perf_counter()
    await rt.cancel(job_id)
    with trio.fail_after(10):  # a broken cancel fails here instead of waiting out the stage
        events = await read_until(subscription, is_terminal)
    elapsed = time.perf_counter() - t0
    return elapsed, events[-1]


def _assert_cancelled_in(event: Event, stage: str) -> None:
    assert event.type is EventType.JOB_CANCELLED
    assert event.data == {"jobId": event.job_id, "step": stage, "message": CANCELED_BY_USER}


async def test_cancel_while_sleeping(make_runtime: RuntimeFactory) -> None:
    started = trio.Event()

    async def sleeper(ctx: StageContext) -> None:
        started.set()
        await trio.sleep(60)

    async with make_runtime(one_stage("sleep", sleeper)) as rt:
        job = await rt.submit("sleep")
        with await rt.subscribe_job(job.id) as sub:
            await started.wait()
            elapsed, last = await _cancel_and_time(rt, job.id, sub)
        assert await status_of(rt, job.id) is JobStatus.CANCELED
    print(f"\ncancel latency, trio.sleep stage: {elapsed * 1000:.2f} ms")
    _assert_cancelled_in(last, "sleep")
    assert elapsed < PROMPT


@pytest.mark.parametrize("own_session", [True, False], ids=["default", "no-new-session"])
async def test_cancel_kills_a_subprocess(make_runtime: RuntimeFactory, own_session: bool) -> None:
    started = trio.Event()
    pids: list[int] = []
    options = {} if own_session else {"start_new_session": False}

    async def run_sleep(ctx: StageContext) -> None:
        async with trio.open_nursery() as nursery:
            process = await nursery.start(partial(ctx.run_process, ["sleep", "60"], **options))
            pids.append(process.pid)
            started.set()

    async with make_runtime(one_stage("proc", run_sleep)) as rt:
        job = await rt.submit("proc")
        with await rt.subscribe_job(job.id) as sub:
            await started.wait()
            assert _process_state(pids[0]) is not None
            elapsed, last = await _cancel_and_time(rt, job.id, sub)
    kind = "sleep 60" if own_session else "sleep 60, start_new_session=False"
    print(f"\ncancel latency, subprocess stage ({kind}): {elapsed * 1000:.2f} ms")
    _assert_cancelled_in(last, "proc")
    assert elapsed < PROMPT
    # killed and reaped by the time the job is Canceled: no zombie of ours
    assert _process_state(pids[0]) is None
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


async def test_cancel_kills_a_shell_and_what_it_spawned(make_runtime: RuntimeFactory) -> None:
    started = trio.Event()
    pids: dict[str, int] = {}

    async def run_shell(ctx: StageContext) -> None:
        read_end, write_end = os.pipe()
        async with trio.lowlevel.FdStream(read_end) as out, trio.open_nursery() as nursery:
            try:
                shell = await nursery.start(
                    partial(
                        ctx.run_process, ["sh", "-c", "sleep 60 & echo $!; wait"], stdout=write_end
                    )
                )
            finally:
                os.close(write_end)
            pids["shell"] = shell.pid
            line = b""
            while not line.endswith(b"\n"):
                line += await out.receive_some()
            pids["child"] = int(line)
            started.set()

    async with make_runtime(one_stage("shell", run_shell)) as rt:
        job = await rt.submit("shell")
        with await rt.subscribe_job(job.id) as sub:
            await started.wait()
            assert pids["child"] != pids["shell"]
            child_state = _process_state(pids["child"])
            assert child_state is not None and not child_state.startswith("Z")
            elapsed, last = await _cancel_and_time(rt, job.id, sub)
    print(f"\ncancel latency, subprocess stage (shell + child): {elapsed * 1000:.2f} ms")
    _assert_cancelled_in(last, "shell")
    assert elapsed < PROMPT
    assert _process_state(pids["shell"]) is None, "the shell is killed and reaped"
    with pytest.raises(ProcessLookupError):
        os.kill(pids["shell"], 0)
    # the shell's child was in its process group: killed too. Orphaned, it is reaped by
    # init (a sandbox whose pid 1 does not reap may show it as a zombie of pid 1).
    await _wait_dead(pids["child"])


async def test_cancel_abandons_a_thread_which_then_exits(make_runtime: RuntimeFactory) -> None:
    started = trio.Event()
    exited = threading.Event()
    checks = [0]

    def busy() -> None:
        try:
            while True:
                trio.from_thread.check_cancelled()
                checks[0] += 1
                if checks[0] == 1:
                    trio.from_thread.run_sync(started.set)
                time.sleep(0.001)
        finally:
            exited.set()

    async def in_thread(ctx: StageContext) -> None:
        await ctx.run_in_thread(busy)

    async with make_runtime(one_stage("thread", in_thread)) as rt:
        job = await rt.submit("thread")
        with await rt.subscribe_job(job.id) as sub:
            await started.wait()
            t0 = time.perf_counter()
            elapsed, last = await _cancel_and_time(rt, job.id, sub)
            assert await trio.to_thread.run_sync(exited.wait, 5), "the thread never stopped"
            thread_exit = time.perf_counter() - t0
    print(
        f"\ncancel latency, thread stage: {elapsed * 1000:.2f} ms "
        f"(thread function exited after {thread_exit * 1000:.2f} ms)"
    )
    _assert_cancelled_in(last, "thread")
    assert elapsed < PROMPT
    assert checks[0] > 0


async def test_cancel_while_queued(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async def forever(ctx: StageContext) -> None:
        await trio.sleep_forever()

    # (keep_failed_files: a canceled job's slot is freed only once its files are removed,
    # in a worker thread, which wait_all_tasks_blocked does not wait for)
    async with make_runtime(
        one_stage("forever", forever), max_concurrent_jobs=1, keep_failed_files=True
    ) as rt:
        blocker = await rt.submit("forever")
        queued = await rt.submit("synthetic")
        assert queued.status is JobStatus.QUEUED and rt.queued_count == 1
        canceled = await rt.cancel(queued.id, message="not needed any more")
        assert canceled.status is JobStatus.CANCELED
        assert await status_of(rt, queued.id) is JobStatus.CANCELED
        assert rt.queued_count == 0
        events = await job_events(rt, queued.id)
        assert [(e.type.value, e.data.get("status")) for e in events] == [
            ("job-status", "Queued"),
            ("job-status", "Canceled"),
            ("job-cancelled", None),
        ]
        assert events[1].data["previousStatus"] == "Queued"
        assert events[2].data == {
            "jobId": queued.id,
            "step": None,
            "message": "not needed any more",
        }
        # the slot frees up later: the cancelled job must still never start
        await rt.cancel(blocker.id)
        await job_events(rt, blocker.id)
        await trio.testing.wait_all_tasks_blocked()
        final = await rt.get(queued.id)
        assert final.status is JobStatus.CANCELED
        assert final.snapshot()["startedAt"] is None
        assert final.snapshot()["attempt"] == 1 and final.snapshot()["node"] is None
        assert rt.running_count == 0
        assert len(await stored_events(rt, queued.id)) == 3
        assert queued.id not in rt._live, "a finished job is read from storage"


async def test_cancel_before_the_first_stage_runs(runtime: Runtime) -> None:
    job = await runtime.submit("synthetic")
    assert job.status is JobStatus.RUNNING  # admitted, but its actor has not run yet
    await runtime.cancel(job.id)
    events = await job_events(runtime, job.id)
    assert events[-1].type is EventType.JOB_CANCELLED
    assert events[-1].data["step"] is None
    assert not [e for e in events if e.type is EventType.STEP_STATUS]


async def test_cancel_refusals(runtime: Runtime) -> None:
    mine = await runtime.submit("synthetic", {"ticks": 1, "tickSeconds": 0}, owner="alice")
    with pytest.raises(JobNotFound):
        await runtime.cancel("no-such-job")
    with pytest.raises(JobNotFound):
        await runtime.cancel(mine.id, owner="bob")
    with pytest.raises(JobNotFound):
        await runtime.cancel(mine.id, owner=None)  # anonymous is another owner too
    assert await status_of(runtime, mine.id) is JobStatus.RUNNING
    await job_events(runtime, mine.id)
    assert await status_of(runtime, mine.id) is JobStatus.DONE
    with pytest.raises(JobAlreadyFinished) as info:
        await runtime.cancel(mine.id, owner="alice")
    assert info.value.code == "job_finished"
    assert await status_of(runtime, mine.id) is JobStatus.DONE
    with pytest.raises(JobNotFound):
        await runtime.cancel(mine.id, owner="bob")  # not 409 for someone else's job
    # the same once the job is only in storage
    await runtime.broadcaster.barrier()
    await trio.testing.wait_all_tasks_blocked()
    assert mine.id not in runtime._live
    with pytest.raises(JobAlreadyFinished):
        await runtime.cancel(mine.id, owner="alice")
    with pytest.raises(JobNotFound):
        await runtime.cancel(mine.id, owner="bob")


async def test_cancel_twice_is_one_cancellation(runtime: Runtime) -> None:
    job = await runtime.submit("synthetic", {"ticks": 1000})
    with await runtime.subscribe_job(job.id) as sub:
        await read_until(sub, lambda e: e.type is EventType.STEP_PROGRESS)
        await runtime.cancel(job.id, message="first")
        await runtime.cancel(job.id, message="second")
        rest = await collect(sub)
    cancelled = [e for e in rest if e.type is EventType.JOB_CANCELLED]
    assert len(cancelled) == 1 and cancelled[0].data["message"] == "first"
    assert cancelled[0].data["step"] == "stage-1"


class _GatedStorage(MemoryStorage):
    """Memory storage whose commits wait while ``gate`` is set to an unset event."""

    def __init__(self) -> None:
        super().__init__(history_ttl=3600, max_history_events=1000)
        self.gate: trio.Event | None = None

    async def commit(self, commit: Commit) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await super().commit(commit)


async def test_a_job_canceled_while_its_submit_waits_for_storage_never_runs(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """``submit`` waits for the job's commit; the job may be canceled meanwhile.

    In a server this happens when a reader of the owner stream sees the ``Queued``
    event and cancels before the submitter wakes (the hub fans out before the
    submitter's wait ends); a slow commit only widens the window. Canceled is
    final: the job must never be admitted, run, or emit after its terminal event.
    """
    ran: list[str] = []

    async def stage(ctx: StageContext) -> None:
        ran.append(ctx.job_id)
        await trio.sleep(1)

    storage = _GatedStorage()
    config = RuntimeConfig(data_dir=tmp_path)
    async with open_runtime(config, registry(one_stage("quick", stage)), storage=storage) as rt:
        storage.gate = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rt.submit, "quick")
            await trio.testing.wait_all_tasks_blocked()  # the submit waits for its commit
            [job_id] = rt._live
            await rt.cancel(job_id)
            storage.gate.set()
        await trio.testing.wait_all_tasks_blocked()
        history = await stored_events(rt, job_id)
        record = await rt.get(job_id)
    summary = [(e.type.value, e.data.get("status")) for e in history]
    assert summary == [
        ("job-status", "Queued"),
        ("job-status", "Canceled"),
        ("job-cancelled", None),
    ]
    assert ran == []
    assert record.status is JobStatus.CANCELED and record.data["attempt"] == 1
    assert rt.running_count == 0
