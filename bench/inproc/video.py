"""Render time of the real ``video`` pipeline: a job from submit to ``job-completed``.

Each render runs alone in a fresh runtime on a temporary data dir, with the
built-in pipelines (espeak-ng when installed, ffmpeg from PATH or the
imageio-ffmpeg wheel). ``speed`` 1000 all but removes the pacing, so that
row is the real work (speech, slides, encoding, muxing); ``speed`` 1 is what
a user who keeps the default waits. The stage times are taken as the
subscriber receives each ``step-status`` event. The reference of each row is
the video's own length: a ratio below 1 renders faster than real time.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from aura_actors.pipelines import default_pipelines
from aura_actors.pipelines.video import find_espeak
from aura_actors.runtime import EventType, RuntimeConfig, open_runtime
from bench.progress import say
from bench.results import Measure, RunResults

#: The video length the issue asks to render "well under a minute on 2 cores".
TARGET_SECONDS = 30.0


@dataclass(slots=True)
class RenderTiming:
    """One render: wall seconds in all and per stage, the status it ended in, the MP4 size."""

    seconds: float
    status: str
    stages: dict[str, float] = field(default_factory=dict)
    video_bytes: int = 0


async def render_once(data_dir: Path, duration: float, speed: float) -> RenderTiming:
    """Submit one ``video`` job and time it to its terminal event."""
    config = RuntimeConfig(data_dir=data_dir, max_concurrent_jobs=1)
    async with open_runtime(config, default_pipelines()) as runtime:
        began = time.perf_counter()
        job = await runtime.submit(
            "video", {"topic": "Benchmarks", "durationSeconds": duration, "speed": speed}
        )
        stages: dict[str, float] = {}
        started: dict[str, float] = {}
        with await runtime.subscribe_job(job.id) as subscription:
            async for event in subscription:
                now = time.perf_counter()
                if event.type is EventType.STEP_STATUS:
                    step = str(event.data["step"])
                    if event.data["state"] == "Started":
                        started[step] = now
                    else:
                        stages[step] = now - started.get(step, now)
                if event.type.is_terminal:
                    break
        seconds = time.perf_counter() - began
        job = await runtime.get(job.id)
    size = sum(a.size_bytes for a in job.artifacts if a.name == "video.mp4")
    return RenderTiming(seconds, job.status.value, stages, size)


def _render(duration: float, speed: float) -> RenderTiming:
    with tempfile.TemporaryDirectory(prefix="aura-bench-video-") as folder:
        return trio.run(render_once, Path(folder), duration, speed)


def run(results: RunResults, renders: tuple[tuple[float, float], ...]) -> None:
    """Render each ``(durationSeconds, speed)`` once; add a row and the stage times of each."""
    voice = "espeak-ng" if find_espeak() else "placeholder tone (espeak-ng not installed)"
    raw = []
    for duration, speed in renders:
        say(f"video: rendering {duration:g} s of video at speed {speed:g} (voice: {voice})")
        timing = _render(duration, speed)
        stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timing.stages.items())
        say(
            f"video: {duration:g} s at speed {speed:g}: {timing.status} in {timing.seconds:.2f} s "
            f"({stages}); video.mp4 {timing.video_bytes / 1000:.0f} kB"
        )
        raw.append({"durationSeconds": duration, "speed": speed, "voice": voice, **vars_of(timing)})
        results.add(
            Measure(
                f"video {duration:g} s speed {speed:g}",
                "render time",
                "s",
                timing.seconds,
                duration,
                "video length",
                target="< 60 s" if duration == TARGET_SECONDS else "",
            )
        )
    results.scenarios["video"] = {"renders": raw}


def vars_of(timing: RenderTiming) -> dict[str, object]:
    """``timing`` as JSON-ready fields."""
    return {
        "seconds": timing.seconds,
        "status": timing.status,
        "stages": timing.stages,
        "videoBytes": timing.video_bytes,
    }
