"""The built-in pipelines: params validation, and what their jobs emit and produce."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from conftest import RuntimeFactory, job_events, of_type, status_of

from aura_actors.pipelines import SyntheticPipeline, VideoPipeline, default_pipelines
from aura_actors.runtime import (
    EventType,
    InvalidJobRequest,
    JobStatus,
    Runtime,
    UnknownPipeline,
)

VIDEO_RANGES = {
    "Script": (0.0, 15.0),
    "Voice": (15.0, 35.0),
    "Visuals": (35.0, 65.0),
    "Composition": (65.0, 85.0),
    "Rendering": (85.0, 100.0),
}


def _fields(params: Any, pipeline: Any) -> list[str]:
    with pytest.raises(InvalidJobRequest) as info:
        pipeline.validate(params)
    assert info.value.code == "validation_error"
    assert info.value.errors, "a refusal lists its problems"
    assert all(set(e) == {"field", "message"} for e in info.value.errors)
    assert all(e["message"] for e in info.value.errors)
    return [e["field"] for e in info.value.errors]


# -- video params ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({}, ["params.topic"]),
        ({"topic": ""}, ["params.topic"]),
        ({"topic": "   \t"}, ["params.topic"]),
        ({"topic": "x", "durationSeconds": 4}, ["params.durationSeconds"]),
        ({"topic": "x", "durationSeconds": 4.99}, ["params.durationSeconds"]),
        ({"topic": "x", "durationSeconds": 601}, ["params.durationSeconds"]),
        ({"topic": "x", "speed": 0}, ["params.speed"]),
        ({"topic": "x", "speed": -1.5}, ["params.speed"]),
        ({"topic": 42}, ["params.topic"]),
        ({"topic": ["x"]}, ["params.topic"]),
        ({"topic": "x", "durationSeconds": "30"}, ["params.durationSeconds"]),
        ({"topic": "x", "durationSeconds": True}, ["params.durationSeconds"]),
        ({"topic": "x", "durationSeconds": None}, ["params.durationSeconds"]),
        ({"topic": "x", "speed": "fast"}, ["params.speed"]),
        ({"topic": "x", "colour": "red"}, ["params.colour"]),
        ({"topic": "x", "duration_seconds": 30}, ["params.duration_seconds"]),
        (
            {"durationSeconds": 2, "speed": 0},
            ["params.topic", "params.durationSeconds", "params.speed"],
        ),
    ],
)
def test_video_params_refused(params: dict[str, Any], fields: list[str]) -> None:
    assert sorted(_fields(params, VideoPipeline())) == sorted(fields)


def test_video_params_not_an_object() -> None:
    assert _fields(["topic"], VideoPipeline()) == ["params"]


def test_video_params_defaults_and_bounds() -> None:
    video = VideoPipeline()
    assert video.validate({"topic": "cats"}) == {
        "topic": "cats",
        "durationSeconds": 30.0,
        "speed": 1.0,
    }
    for duration in (5, 600, 5.0, 42.5):
        assert video.validate({"topic": "t", "durationSeconds": duration})["durationSeconds"] == (
            duration
        )
    assert video.validate({"topic": "t", "speed": 0.01})["speed"] == 0.01


async def test_submit_refuses_bad_params_and_unknown_pipelines(runtime: Runtime) -> None:
    with pytest.raises(InvalidJobRequest) as info:
        await runtime.submit("video", {"topic": ""})
    assert info.value.errors[0]["field"] == "params.topic"
    assert "video" in info.value.message
    for name in ("nope", None, 5, "Video"):
        with pytest.raises(UnknownPipeline) as unknown:
            await runtime.submit(name, {"topic": "x"})
        assert unknown.value.code == "unknown_pipeline"
        assert unknown.value.errors == [{"field": "pipeline", "message": "unknown pipeline"}]
        assert "synthetic" in str(unknown.value) and "video" in str(unknown.value)
        assert isinstance(unknown.value, InvalidJobRequest)
    assert runtime.job_count == 0
    assert (await runtime.list_jobs()).jobs == []
    assert default_pipelines().names() == ["synthetic", "video"]


# -- synthetic ---------------------------------------------------------------------------


def test_synthetic_defaults() -> None:
    assert SyntheticPipeline().validate({}) == {"stages": 3, "ticks": 10, "tickSeconds": 0.01}
    stages = SyntheticPipeline().build(SyntheticPipeline().validate({"stages": 4}))
    assert [s.name for s in stages] == ["stage-1", "stage-2", "stage-3", "stage-4"]
    assert {s.weight for s in stages} == {1.0}


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"stages": 0}, ["params.stages"]),
        ({"stages": 51}, ["params.stages"]),
        ({"ticks": 0}, ["params.ticks"]),
        ({"ticks": 100_001}, ["params.ticks"]),
        ({"tickSeconds": -0.1}, ["params.tickSeconds"]),
        ({"stages": 2.5}, ["params.stages"]),
        ({"stages": True}, ["params.stages"]),
        ({"ticks": "10"}, ["params.ticks"]),
        ({"failAt": {"stage": -1, "tick": 0}}, ["params.failAt.stage"]),
        ({"failAt": {"stage": 0}}, ["params.failAt.tick"]),
        ({"failAt": {"stage": 0, "tick": 0, "x": 1}}, ["params.failAt.x"]),
        ({"failAt": [0, 0]}, ["params.failAt"]),
        ({"warnAt": {"stage": 0, "tick": "1"}}, ["params.warnAt.tick"]),
        ({"stages": 2, "failAt": {"stage": 2, "tick": 0}}, ["params"]),
        ({"ticks": 5, "warnAt": {"stage": 0, "tick": 5}}, ["params"]),
        ({"speed": 1}, ["params.speed"]),
    ],
)
def test_synthetic_params_refused(params: dict[str, Any], fields: list[str]) -> None:
    assert _fields(params, SyntheticPipeline()) == fields


def test_synthetic_bounds_accepted() -> None:
    synthetic = SyntheticPipeline()
    for params in (
        {"stages": 1, "ticks": 1, "tickSeconds": 0},
        {"stages": 50, "ticks": 100_000},
        {
            "stages": 2,
            "ticks": 5,
            "failAt": {"stage": 1, "tick": 4},
            "warnAt": {"stage": 0, "tick": 0},
        },
    ):
        assert synthetic.validate(params).items() >= params.items()


async def test_synthetic_fail_at_is_zero_based(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.submit(
            "synthetic", {"stages": 3, "ticks": 5, "failAt": {"stage": 1, "tick": 2}}
        )
        events = await job_events(rt, job.id)
        status = await status_of(rt, job.id)
    progress = of_type(events, EventType.STEP_PROGRESS)
    # stage 0: all 5 ticks; stage 1: ticks 0 and 1 reported, tick 2 fails
    assert [(e.data["step"], e.data["currentItem"]) for e in progress] == [
        *[("stage-1", n) for n in range(1, 6)],
        ("stage-2", 1),
        ("stage-2", 2),
    ]
    failed = events[-1]
    assert failed.type is EventType.JOB_FAILED
    assert failed.data["step"] == "stage-2"
    assert failed.data["errors"][0]["code"] == "synthetic_failure"
    assert "failAt" in failed.data["errors"][0]["remediation"]
    assert status is JobStatus.FAILED


async def test_synthetic_warn_at_is_zero_based(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.submit(
            "synthetic",
            {"stages": 2, "ticks": 4, "tickSeconds": 0.5, "warnAt": {"stage": 1, "tick": 0}},
        )
        events = await job_events(rt, job.id)
        assert await status_of(rt, job.id) is JobStatus.DONE
    kinds = [(e.type, e.data.get("step"), e.data.get("currentItem")) for e in events]
    warning_at = kinds.index((EventType.WARNING, "stage-2", None))
    assert kinds[warning_at - 1] == (EventType.STEP_STATUS, "stage-2", None)  # Started
    assert kinds[warning_at + 1] == (EventType.STEP_PROGRESS, "stage-2", 1)
    assert len(of_type(events, EventType.WARNING)) == 1
    assert events[-1].data["durationSeconds"] == pytest.approx(2 * 4 * 0.5)
