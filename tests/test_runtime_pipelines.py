"""The built-in pipelines: params validation, and what their jobs emit and produce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from conftest import RuntimeFactory, job_events, of_type

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
        runtime.submit("video", {"topic": ""})
    assert info.value.errors[0]["field"] == "params.topic"
    assert "video" in info.value.message
    for name in ("nope", None, 5, "Video"):
        with pytest.raises(UnknownPipeline) as unknown:
            runtime.submit(name, {"topic": "x"})
        assert unknown.value.code == "unknown_pipeline"
        assert unknown.value.errors == [{"field": "pipeline", "message": "unknown pipeline"}]
        assert "synthetic" in str(unknown.value) and "video" in str(unknown.value)
        assert isinstance(unknown.value, InvalidJobRequest)
    assert runtime.job_count == 0
    assert default_pipelines().names() == ["synthetic", "video"]


# -- a video job -------------------------------------------------------------------------


@pytest.mark.parametrize(("duration", "speed"), [(30, 1.0), (5, 4.0)])
async def test_video_job_runs_through_its_five_stages(
    make_runtime: RuntimeFactory,
    thread_aware_autojump_clock: trio.testing.MockClock,
    tmp_path: Path,
    duration: int,
    speed: float,
) -> None:
    async with make_runtime(data_dir=tmp_path) as rt:
        job = rt.submit(
            "video",
            {"topic": "Octopus <intelligence>", "durationSeconds": duration, "speed": speed},
        )
        events = await job_events(rt, job.id)
    assert job.status is JobStatus.DONE, [e.data for e in events[-2:]]
    assert not of_type(events, EventType.WARNING), "no stage should look stalled"
    names = list(VIDEO_RANGES)
    scenes = -(-duration // 6)
    items = {
        "Script": scenes,
        "Voice": scenes,
        "Visuals": 3 * scenes,
        "Composition": scenes,
        "Rendering": 10,
    }
    steps = [e for e in events if e.type is EventType.STEP_STATUS]
    assert [(e.data["step"], e.data["state"]) for e in steps] == [
        (name, state) for name in names for state in ("Started", "Completed")
    ]
    for index, pair in enumerate(zip(steps[::2], steps[1::2], strict=True)):
        for event in pair:
            assert event.data["stepIndex"] == index
            assert event.data["totalSteps"] == 5
    # progress of each stage inside its range; items counted 1..N of N
    current_stage = None
    by_stage: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for event in events:
        if event.type is EventType.STEP_STATUS and event.data["state"] == "Started":
            current_stage = event.data["step"]
        if event.type is EventType.STEP_PROGRESS:
            assert event.data["step"] == current_stage
            by_stage[event.data["step"]].append(event.data)
    for name, reports in by_stage.items():
        low, high = VIDEO_RANGES[name]
        assert reports, f"{name} reported no progress"
        assert all(low <= r["progressPct"] <= high for r in reports), name
        assert reports[-1]["progressPct"] == high
        assert [r["currentItem"] for r in reports] == list(range(1, items[name] + 1))
        assert {r["totalItems"] for r in reports} == {items[name]}
        assert reports[-1]["stepProgressPct"] == 100.0
    pcts = [e.data["progressPct"] for e in events if "progressPct" in e.data]
    assert pcts == sorted(pcts) and pcts[-1] == 100.0
    completed = events[-1]
    assert completed.type is EventType.JOB_COMPLETED
    assert completed.data["durationSeconds"] == pytest.approx(0.4 * duration / speed, abs=0.01)
    artifacts = completed.data["artifacts"]
    assert [a["name"] for a in artifacts] == [
        "script.txt",
        "voice.wav",
        "storyboard.svg",
        "render.json",
    ]
    assert [a["mimeType"] for a in artifacts] == [
        "text/plain",
        "audio/wav",
        "image/svg+xml",
        "application/json",
    ]
    assert job.snapshot()["artifacts"] == artifacts
    _check_artifact_files(tmp_path, artifacts)


def _check_artifact_files(data_dir: Path, artifacts: list[dict[str, Any]]) -> None:
    for artifact in artifacts:
        path = data_dir / artifact["path"]
        assert path.is_file(), artifact
        assert path.resolve().is_relative_to(data_dir.resolve())
        assert path.stat().st_size == artifact["sizeBytes"] > 0
    assert (data_dir / artifacts[0]["path"]).read_text().startswith("# Octopus <intelligence>")
    assert "&lt;intelligence&gt;" in (data_dir / artifacts[2]["path"]).read_text()
    assert (data_dir / artifacts[1]["path"]).read_bytes()[:4] == b"RIFF"


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
        job = rt.submit("synthetic", {"stages": 3, "ticks": 5, "failAt": {"stage": 1, "tick": 2}})
        events = await job_events(rt, job.id)
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
    assert job.status is JobStatus.FAILED


async def test_synthetic_warn_at_is_zero_based(
    make_runtime: RuntimeFactory, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = rt.submit(
            "synthetic",
            {"stages": 2, "ticks": 4, "tickSeconds": 0.5, "warnAt": {"stage": 1, "tick": 0}},
        )
        events = await job_events(rt, job.id)
    assert job.status is JobStatus.DONE
    kinds = [(e.type, e.data.get("step"), e.data.get("currentItem")) for e in events]
    warning_at = kinds.index((EventType.WARNING, "stage-2", None))
    assert kinds[warning_at - 1] == (EventType.STEP_STATUS, "stage-2", None)  # Started
    assert kinds[warning_at + 1] == (EventType.STEP_PROGRESS, "stage-2", 1)
    assert len(of_type(events, EventType.WARNING)) == 1
    assert events[-1].data["durationSeconds"] == pytest.approx(2 * 4 * 0.5)
