"""Workers that die, pause or stop, as real processes on one Redis prefix (contract section 8).

- SIGKILL of a worker running a job: within ``--worker-timeout`` another worker's
  reaper takes it over and runs it again (its stream: ``warning``, then
  ``job-status`` Running) while attempts remain, else it ends Failed ``worker_lost``.
- SIGSTOP of a worker running a job until it is taken over, then SIGCONT: it never
  writes to that job again (the stream shows only the new holder's run, no
  ``job-cancelled`` of the old one) and its actor is cancelled.
- SIGTERM drain: a worker lets a short job finish and exits 0; with a job longer
  than ``--drain-seconds`` it hands it back (another worker runs it) and exits 0.

Every wait is on a stream's events, a process's exit or a log line, bounded.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import coredis
import trio
from support.failover import Cluster, cluster
from support.redis import SHARED_URL
from support.servers import ServerProcess
from support.streams import Ev, assert_strictly_increasing, create_job, open_sse

from aura_actors.cluster import KeyLayout

#: w-1's and w-2's flags where a job taken from w-1 may run again.
TWO_ATTEMPTS = ("--max-attempts", "2")


def _job(ticks: int, tick_seconds: float) -> dict[str, Any]:
    return {
        "pipeline": "synthetic",
        "params": {"stages": 1, "ticks": ticks, "tickSeconds": tick_seconds},
    }


#: About three seconds of work, in 30 ticks that each report progress.
STEPPING = _job(ticks=30, tick_seconds=0.1)
#: A job that sits in its first tick until cancelled.
WAITING = _job(ticks=1, tick_seconds=600)


def _rerun(events: Sequence[Ev]) -> int:
    """The index of the ``warning`` that opens a run again (followed by Running)."""
    for index, event in enumerate(events[:-1]):
        after = events[index + 1]
        if event.event == "warning" and "running again" in event.data["message"]:
            assert after.event == "job-status" and after.data["status"] == "Running"
            return index
    raise AssertionError(f"no run again in {[e.event for e in events]}")


async def _done_on_w2(nodes: Cluster, job: str, events: list[Ev]) -> list[Ev]:
    """Check that ``job`` ran again (its stream: a ``warning``, then ``job-status``
    Running) and completed on w-2, its second run: its events from that ``warning`` on."""
    again = _rerun(events)
    assert events[-1].event == "job-completed", [e.event for e in events]
    snapshot = await nodes.snapshot(job)
    assert (snapshot["status"], snapshot["node"], snapshot["attempt"]) == ("Done", "w-2", 2)
    return events[again:]


def _one_run_never_cancelled(events: list[Ev], after: list[Ev]) -> None:
    """No ``job-cancelled`` in ``events``, and from the run again on (``after``), one run:
    its progress goes 1, 2, ... 30, never back."""
    assert "job-cancelled" not in {e.event for e in events}
    ticks = [e.data["currentItem"] for e in after if e.event == "step-progress"]
    assert ticks == sorted(ticks) and ticks[-1] == 30, ticks


async def _exits_0(server: ServerProcess, seconds: float = 30) -> None:
    with trio.fail_after(seconds):
        code = await server.wait()
    assert code == 0, server.stderr.decode(errors="replace")[-3000:]


async def _logged(server: ServerProcess, message: str, seconds: float = 20) -> None:
    """Wait until ``server`` logs ``message`` (nothing else tells: polled, bounded)."""
    with trio.move_on_after(seconds):
        while not any(line.get("msg") == message for line in server.log_lines()):  # noqa: ASYNC110
            await trio.sleep(0.05)
        return
    raise AssertionError(f"{message!r} not logged: {server.stderr.decode()[-4000:]}")


def _taken_over(event: Ev) -> bool:
    """The ``job-status`` Running of a run again: a Running that follows a Running."""
    return (
        event.event == "job-status"
        and event.data["status"] == "Running"
        and event.data["previousStatus"] == "Running"
    )


async def test_a_killed_workers_job_runs_again_on_another_worker(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        run = await nodes.running_on_w1(STEPPING, *TWO_ATTEMPTS)
        await nodes.take_over(run, signal.SIGKILL, *TWO_ATTEMPTS)
        events = run.seen + await run.rest()
        assert_strictly_increasing(events)
        after = await _done_on_w2(nodes, run.job, events)
        assert after[0].data["message"] == "running again (attempt 2)"
        assert [e.event for e in events].count("job-completed") == 1


async def test_a_killed_workers_job_with_no_attempt_left_ends_worker_lost(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        run = await nodes.running_on_w1(WAITING, until="step-status")  # --max-attempts 1
        await nodes.take_over(run, signal.SIGKILL)
        rest = await run.rest()
        assert rest[-1].event == "job-failed", [e.event for e in rest]
        assert rest[-1].data["errors"][0]["code"] == "worker_lost"
        assert "w-1" in rest[-1].data["errors"][0]["message"]
        assert "warning" not in {e.event for e in rest}
        assert (await nodes.snapshot(run.job))["status"] == "Failed"


async def test_a_paused_worker_never_writes_to_the_job_taken_from_it(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        run = await nodes.running_on_w1(STEPPING, *TWO_ATTEMPTS)
        await nodes.take_over(run, signal.SIGSTOP, *TWO_ATTEMPTS)
        with trio.fail_after(60):
            async with run.resume() as stream:
                try:
                    taken = await stream.until(_taken_over)
                finally:
                    run.w1.send_signal(signal.SIGCONT)
                # The resumed worker's next write is refused: its actor is cancelled.
                await _logged(run.w1, "job taken from this worker: cancelling its actor")
                events = run.seen + stream.received + await stream.rest()
        assert taken[-1].data["previousStatus"] == "Running"
        after = await _done_on_w2(nodes, run.job, events)
        _one_run_never_cancelled(events, after)
        assert_strictly_increasing(events)
        run.w1.send_signal(signal.SIGTERM)
        await _exits_0(run.w1)


async def test_sigterm_lets_a_short_job_finish_then_the_worker_exits_0(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        api = await nodes.client()
        w1 = await nodes.node("worker", "w-1", "--drain-seconds", "30")
        job = await create_job(api, _job(ticks=10, tick_seconds=0.1))
        with trio.fail_after(60):
            async with open_sse(api, f"/api/jobs/{job}/events") as stream:
                await stream.until(lambda event: event.event == "step-progress")  # it runs
                w1.send_signal(signal.SIGTERM)
                rest = await stream.rest()
            await _exits_0(w1)
        assert rest[-1].event == "job-completed", [e.event for e in rest]
        assert "warning" not in {e.event for e in rest}
        snapshot = await nodes.snapshot(job)
        assert (snapshot["status"], snapshot["node"], snapshot["attempt"]) == ("Done", "w-1", 1)


async def test_sigterm_hands_a_long_job_back_within_the_drain_and_exits_0(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        run = await nodes.running_on_w1(STEPPING, "--drain-seconds", "1", *TWO_ATTEMPTS)
        run.w1.send_signal(signal.SIGTERM)
        await _exits_0(run.w1)
        # Handed back: queued again, no one holds it until a worker claims it (not left
        # to a reaper: w-1 holds it no more).
        assert (await nodes.snapshot(run.job))["status"] == "Running"
        async with coredis.Redis.from_url(SHARED_URL, decode_responses=True) as client:
            held = await client.hmget(KeyLayout(prefix).job(run.job), ["worker", "attempt"])
            assert list(held) == [None, "1"]
            assert await client.zrange(KeyLayout(prefix).queued, 0, -1) == (run.job,)
        await nodes.node("worker", "w-2", *TWO_ATTEMPTS)
        events = run.seen + await run.rest()
        after = await _done_on_w2(nodes, run.job, events)
        _one_run_never_cancelled(events, after)


async def test_sigterm_on_an_api_node_ends_its_streams_and_the_job_goes_on(
    tmp_path: Path, prefix: str
) -> None:
    async with cluster(tmp_path, prefix) as nodes:
        api = await nodes.client()
        other = await nodes.node("api", "api-2")
        two = await nodes.client_of(other)
        await nodes.node("worker", "w-1")
        api_1 = nodes.api_node
        assert api_1 is not None
        job = await create_job(api, WAITING)
        with trio.fail_after(30):
            async with open_sse(api, f"/api/jobs/{job}/events") as stream:
                seen = await stream.until(lambda event: event.event == "step-status")
                api_1.send_signal(signal.SIGTERM)
                seen += await stream.rest()  # the node ends it: the job cannot have ended
            await _exits_0(api_1)
        assert not seen[-1].is_terminal
        # The job goes on: a client resumes on api-2, and a cancel there ends it.
        headers = {"Last-Event-ID": str(seen[-1].id)}
        with trio.fail_after(30):
            async with open_sse(two, f"/api/jobs/{job}/events", headers=headers) as resumed:
                answer = await two.post(f"/api/jobs/{job}/cancel")
                assert answer.status_code == 202, answer.text
                rest = await resumed.rest()
        assert rest[-1].event == "job-cancelled", [e.event for e in rest]
        assert_strictly_increasing(seen + rest)
