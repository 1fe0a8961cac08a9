"""Cancelling a render at any stage: the program it runs dies with its whole process group,
no ffmpeg or espeak-ng is left in the process table, and the job's files are gone."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import is_terminal, read_until
from support.processes import in_session, live, mentioning, wait_for_line, wait_until_none
from support.video import ESPEAK, FFMPEG, stand_in, video_runtime

from aura_actors.pipelines import VideoTools
from aura_actors.runtime import Event, EventType, JobStatus, Runtime, Subscription

STAGES = ("Script", "Voice", "Visuals", "Composition", "Rendering")


def _started(stage: str) -> Callable[[Event], bool]:
    return lambda e: (
        e.type is EventType.STEP_STATUS and e.data["step"] == stage and e.data["state"] == "Started"
    )


async def _cancel_and_finish(rt: Runtime, job_id: str, subscription: Subscription) -> list[Event]:
    await rt.cancel(job_id)
    events = await read_until(subscription, is_terminal)
    assert events[-1].type is EventType.JOB_CANCELLED, events[-1]
    return events


@pytest.mark.parametrize(
    ("stage", "program", "pattern"),
    [
        ("Voice", "espeak-ng", ""),
        ("Composition", "ffmpeg", "tpad"),
        ("Rendering", "ffmpeg", "concat"),
    ],
)
async def test_cancel_kills_the_running_program_and_its_children(
    tmp_path: Path, stage: str, program: str, pattern: str
) -> None:
    """A stand-in program hangs (with a child of its own) until the job is cancelled."""
    real = {"espeak-ng": ESPEAK, "ffmpeg": FFMPEG}[program]
    hanging = stand_in(tmp_path, program, real, pattern, "hang")
    tools = VideoTools(
        ffmpeg=hanging if program == "ffmpeg" else FFMPEG,
        espeak=hanging if program == "espeak-ng" else ESPEAK,
    )
    async with video_runtime(tmp_path / "data", tools) as rt:
        job = await rt.submit("video", {"topic": "Owls", "durationSeconds": 12, "speed": 1000})
        with await rt.subscribe_job(job.id) as subscription:
            pid = int(await wait_for_line(tmp_path / f"{program}.pid"))
            group = live(in_session(pid))
            assert {info.pid for info in group} >= {pid}, "the program leads its own session"
            assert len(group) >= 2, f"the stand-in and its child run: {group}"
            events = await _cancel_and_finish(rt, job.id, subscription)
            job = await rt.get(job.id)
        await wait_until_none(in_session(pid))
    assert events[-1].data["step"] == stage
    assert job.status is JobStatus.CANCELED
    assert not (tmp_path / "data" / "artifacts" / job.id).exists()
    assert not live(mentioning(str(tmp_path)))


@pytest.mark.parametrize("stage", STAGES)
async def test_cancel_in_every_stage_of_a_real_render(tmp_path: Path, stage: str) -> None:
    """The real programs: cancel as the stage starts (or, in a paced stage, once it is under
    way); nothing that names the job's folder keeps running, and the folder is gone."""
    async with video_runtime(tmp_path) as rt:
        job = await rt.submit("video", {"topic": "Whales", "durationSeconds": 30, "speed": 20})
        folder = tmp_path / "artifacts" / job.id
        with await rt.subscribe_job(job.id) as subscription:
            await read_until(subscription, _started(stage))
            if stage != "Rendering":
                await read_until(subscription, lambda e: e.type is EventType.STEP_PROGRESS)
            events = await _cancel_and_finish(rt, job.id, subscription)
            job = await rt.get(job.id)
        await wait_until_none(mentioning(str(folder)))
    assert events[-1].data["step"] == stage
    assert job.status is JobStatus.CANCELED and job.artifacts == []
    assert not folder.exists(), sorted(str(p) for p in folder.rglob("*"))


async def test_no_program_outlives_a_shutdown(tmp_path: Path) -> None:
    """Leaving the runtime cancels its jobs: their programs die with them."""
    hanging = stand_in(tmp_path, "ffmpeg", FFMPEG, "tpad", "hang")
    async with video_runtime(tmp_path / "data", VideoTools(ffmpeg=hanging, espeak=ESPEAK)) as rt:
        job = await rt.submit("video", {"topic": "Moles", "durationSeconds": 5, "speed": 1000})
        pid = int(await wait_for_line(tmp_path / "ffmpeg.pid"))
    await wait_until_none(in_session(pid))
    stored = await rt.storage.get(job.id)  # the in-memory storage outlives its runtime
    assert stored is not None and stored.status is JobStatus.CANCELED
    assert not live(lambda info: info.ppid == os.getpid() and "sleep" in info.cmdline)
    assert not (tmp_path / "data" / "artifacts" / job.id).exists()
