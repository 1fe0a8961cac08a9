"""Weighted progress ranges, monotonic overall progress, and the ETA."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing
from conftest import FnPipeline, RuntimeFactory, job_events, of_type

from aura_actors.pipelines import VIDEO_STAGES
from aura_actors.runtime import EtaEstimator, EventType, ProgressTracker, Stage, StageContext

VIDEO_RANGES = {
    "Script": (0.0, 15.0),
    "Voice": (15.0, 35.0),
    "Visuals": (35.0, 65.0),
    "Composition": (65.0, 85.0),
    "Rendering": (85.0, 100.0),
}

# -- ProgressTracker --------------------------------------------------------------------


def test_video_weights_give_the_contract_ranges() -> None:
    tracker = ProgressTracker([weight for _, weight in VIDEO_STAGES])
    assert [name for name, _ in VIDEO_STAGES] == list(VIDEO_RANGES)
    for index, name in enumerate(VIDEO_RANGES):
        assert tracker.stage_range(index) == pytest.approx(VIDEO_RANGES[name])


def test_weighted_progress_maps_each_stage_onto_its_range() -> None:
    tracker = ProgressTracker([1, 3])
    assert tracker.stage_range(0) == (0.0, 25.0)
    assert tracker.stage_range(1) == (25.0, 100.0)
    assert tracker.start_stage(0) == 0.0
    assert tracker.report(0, 0.5) == 12.5
    assert tracker.complete_stage(0) == 25.0
    assert tracker.start_stage(1) == 25.0
    assert tracker.stage_pct == 0.0
    assert tracker.report(1, 0.5) == 62.5
    assert tracker.stage_pct == 50.0
    assert tracker.complete_stage(1) == 100.0


def test_uneven_weights_end_exactly_at_100() -> None:
    tracker = ProgressTracker([1, 1, 1])
    assert tracker.stage_range(2)[1] == 100.0
    for index in range(3):
        tracker.start_stage(index)
        tracker.complete_stage(index)
    assert tracker.overall_pct == 100.0


@pytest.mark.parametrize("weights", [[], [1, 0], [1, -1], [math.nan]])
def test_bad_weights_are_refused(weights: list[float]) -> None:
    with pytest.raises(ValueError):
        ProgressTracker(weights)


def test_overall_progress_never_decreases_whatever_a_stage_reports() -> None:
    tracker = ProgressTracker([1, 1])
    tracker.start_stage(0)
    seen = [tracker.report(0, 0.6)]
    assert seen[-1] == 30.0
    for odd in (0.2, -5.0, math.nan, -math.inf, 0.0):
        seen.append(tracker.report(0, odd))
        assert seen[-1] == 30.0, f"report {odd!r} moved progress back"
        assert tracker.stage_pct == 60.0
    seen.append(tracker.report(0, 7.0))  # > 1 is clamped to the end of the stage's range
    assert seen[-1] == 50.0
    seen.append(tracker.report(0, math.inf))
    assert seen[-1] == 50.0
    # entering the next stage (or re-entering an earlier one) never goes back either
    seen.append(tracker.start_stage(1))
    seen.append(tracker.start_stage(0))
    seen.append(tracker.report(1, 0.1))
    assert seen == sorted(seen)
    assert min(seen) >= 0.0 and max(seen) <= 100.0


# -- EtaEstimator ------------------------------------------------------------------------


def test_eta_is_null_until_estimable() -> None:
    eta = EtaEstimator(min_elapsed=0.5)
    assert eta.observe(10.0, 1.0) is None  # first observation: no rate yet
    assert eta.observe(10.2, 5.0) is None  # too soon
    assert eta.observe(11.0, 1.0) is None  # no progress gained
    assert eta.observe(11.0, 11.0) == pytest.approx(89.0 / 10.0, abs=0.1)


def test_eta_is_finite_and_sensible_under_steady_progress() -> None:
    eta = EtaEstimator()
    # 2 % per second from t=0: after t seconds, 100 - 2t percent remain, at 2 %/s.
    estimates = [eta.observe(float(t), 2.0 * t) for t in range(0, 50)]
    assert estimates[0] is None
    for t, estimate in enumerate(estimates[1:], start=1):
        assert estimate is not None and math.isfinite(estimate)
        assert estimate == pytest.approx(50.0 - t, abs=0.1)
    assert eta.observe(50.0, 100.0) == 0.0


def test_eta_grows_under_a_stall() -> None:
    eta = EtaEstimator()
    for t in range(0, 11):
        before = eta.observe(float(t), 2.0 * t)
    assert before == pytest.approx(40.0, abs=0.1)
    assert before is not None
    stalled = [eta.observe(10.0 + extra, 20.0) for extra in (5.0, 20.0, 100.0)]
    values = [value for value in stalled if value is not None]
    assert len(values) == 3
    assert before < values[0] < values[1] < values[2]
    assert all(math.isfinite(value) for value in values)


def test_eta_is_robust_to_a_jump() -> None:
    eta = EtaEstimator()
    for t in range(0, 11):
        before = eta.observe(float(t), 1.0 * t)
    assert before is not None and before == pytest.approx(90.0, abs=0.1)
    after = eta.observe(11.0, 95.0)  # a stage jumps far ahead
    assert after is not None and math.isfinite(after)
    assert 0.0 < after < before
    again = eta.observe(12.0, 96.0)
    assert again is not None and 0.0 < again < before


# -- through jobs, on the autojump clock -------------------------------------------------


def _scripted(name: str, fractions: list[float], tick: float = 0.5) -> FnPipeline:
    async def run(ctx: StageContext) -> None:
        for fraction in fractions:
            await trio.sleep(tick)
            await ctx.report(fraction)

    return FnPipeline(name, lambda params: [Stage("A", run, weight=1), Stage("B", run, weight=3)])


async def test_job_progress_is_monotonic_under_odd_reports(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    odd = [0.5, 0.2, math.nan, 1.5, -1.0, 0.9, 1.0, 0.3]
    async with make_runtime(_scripted("odd", odd)) as rt:
        job = await rt.submit("odd")
        events = await job_events(rt, job.id)
        final = await rt.get(job.id)
    pcts = [e.data["progressPct"] for e in events if "progressPct" in e.data]
    assert pcts == sorted(pcts), pcts
    progress = of_type(events, EventType.STEP_PROGRESS)
    assert len(progress) == 2 * len(odd)
    stage_a = [e.data["progressPct"] for e in progress if e.data["step"] == "A"]
    stage_b = [e.data["progressPct"] for e in progress if e.data["step"] == "B"]
    # A owns 0–25, B 25–100; >1 clamps to the end of the range, NaN / backwards never lower
    assert stage_a == [12.5, 12.5, 12.5, 25.0, 25.0, 25.0, 25.0, 25.0]
    assert stage_b == [62.5, 62.5, 62.5, 100.0, 100.0, 100.0, 100.0, 100.0]
    step_pcts = [e.data["stepProgressPct"] for e in progress if e.data["step"] == "A"]
    assert step_pcts == sorted(step_pcts)
    assert all(0.0 <= p <= 100.0 for p in step_pcts)
    assert final.data["progressPct"] == 100.0


async def test_job_eta_under_steady_progress(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async def steady(ctx: StageContext) -> None:
        for step in range(1, 101):
            await trio.sleep(0.1)
            await ctx.report(step / 100)

    async with make_runtime(FnPipeline("steady", lambda p: [Stage("S", steady)])) as rt:
        job = await rt.submit("steady")
        events = await job_events(rt, job.id)
        snapshot = (await rt.get(job.id)).snapshot()
    progress = of_type(events, EventType.STEP_PROGRESS)
    assert len(progress) == 100
    etas = [e.data["etaSeconds"] for e in progress]
    assert etas[0] is None, "no rate after a single observation"
    # a tenth of a second per percent: from 10 % on, the ETA is the real time left
    for index in range(10, 100):
        remaining = (100 - (index + 1)) * 0.1
        assert etas[index] == pytest.approx(remaining, abs=0.15), (index, etas[index])
    assert progress[-1].data["etaSeconds"] == 0.0
    assert snapshot["status"] == "Done"
    assert snapshot["etaSeconds"] is None, "a finished job has no ETA"


async def test_job_eta_grows_under_a_stall_and_survives_a_jump(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async def stalls_then_jumps(ctx: StageContext) -> None:
        for step in range(1, 11):
            await trio.sleep(1.0)
            await ctx.report(step / 100)  # 1 % per second
        await trio.sleep(60.0)  # a stall
        await ctx.report(0.11)
        await trio.sleep(1.0)
        await ctx.report(0.95)  # a jump
        await trio.sleep(1.0)  # (so the stage's final 100 % does not supersede it in a stream)

    pipeline = FnPipeline("stall", lambda p: [Stage("S", stalls_then_jumps)])
    async with make_runtime(pipeline) as rt:
        job = await rt.submit("stall")
        events = await job_events(rt, job.id)
    etas = [e.data["etaSeconds"] for e in of_type(events, EventType.STEP_PROGRESS)]
    before_stall, after_stall, after_jump = etas[9], etas[10], etas[11]
    assert before_stall == pytest.approx(90 / 1.0, rel=0.02)
    assert after_stall is not None and after_stall > before_stall * 3
    assert after_jump is not None and math.isfinite(after_jump)
    assert 0.0 < after_jump < after_stall
