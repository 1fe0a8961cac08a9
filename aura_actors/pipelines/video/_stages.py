"""The five stages of a render, each real work that reports per scene.

Files go to the job's artifact folder: ``script.txt``, ``voice.wav``,
``slides/NN.png``, ``thumbnail.jpg`` and ``video.mp4``; intermediate files
(per-scene speech, per-scene segments) go to its ``work/`` folder, removed
once the video is made. A stage that is cancelled or fails removes the whole
folder, so a canceled or failed job leaves no partial files behind.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from ...runtime import StageContext, StageFunction
from ._ffmpeg import concat_list, final_command, segment_command
from ._plan import RenderPlan
from ._runner import run_ffmpeg
from ._script import Scene, script_text, write_scenes
from ._slides import Fonts, load_fonts, png_bytes, render_slide, thumbnail_bytes
from ._tools import VideoTools, find_espeak, find_ffmpeg
from ._voice import Speaker, join_tracks

#: The finished files, in the order of the job's ``artifacts``.
ARTIFACTS = (
    ("video.mp4", "video/mp4"),
    ("thumbnail.jpg", "image/jpeg"),
    ("voice.wav", "audio/wav"),
    ("script.txt", "text/plain"),
)

StageRun = Callable[[RenderPlan, "VideoTools | None", StageContext], Awaitable[None]]


class Pacer:
    """Makes a stage spend at least ``seconds_per_item`` per item (real work counts).

    The only waiting a render does on purpose, so that ``speed`` keeps its
    meaning: ``speed`` 2 halves it, 1000 all but removes it.
    """

    def __init__(self, seconds_per_item: float) -> None:
        self.seconds_per_item = seconds_per_item
        self.started = trio.current_time()

    async def wait(self, items_done: int) -> None:
        """Wait until ``items_done`` items' worth of time has passed. A checkpoint."""
        await trio.sleep_until(self.started + items_done * self.seconds_per_item)


def job_folder(context: StageContext) -> Path:
    """The job's artifact folder (not created)."""
    return context.data_dir / "artifacts" / context.job_id


def work_folder(context: StageContext, name: str) -> Path:
    """``work/<name>`` inside the job's folder, created."""
    path = context.artifact_dir / "work" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def guarded(run: StageRun, plan: RenderPlan, tools: VideoTools | None) -> StageFunction:
    """``run`` as a stage function that removes the job's folder when it is cancelled or fails."""

    async def stage(context: StageContext) -> None:
        try:
            await run(plan, tools, context)
        except BaseException:
            shutil.rmtree(job_folder(context), ignore_errors=True)
            raise

    return stage


async def _scene_done(
    context: StageContext, pacer: Pacer, scene: Scene, count: int, verb: str
) -> None:
    number = scene.timing.number
    await pacer.wait(number)
    await context.report(
        number / count,
        f"{verb} scene {number} of {count}: {scene.title}",
        current_item=number,
        total_items=count,
    )


async def script_stage(plan: RenderPlan, tools: VideoTools | None, context: StageContext) -> None:
    """Script: write each scene's title and text, then ``script.txt``."""
    pacer = Pacer(plan.pace_seconds)
    scenes = write_scenes(plan)
    for scene in scenes:
        await _scene_done(context, pacer, scene, plan.scene_count, "wrote")
    text = script_text(plan, scenes)
    await trio.Path(context.artifact_dir / "script.txt").write_text(text, encoding="utf-8")


async def voice_stage(plan: RenderPlan, tools: VideoTools | None, context: StageContext) -> None:
    """Voice: espeak-ng per scene (or a placeholder), joined into ``voice.wav``."""
    espeak = tools.espeak if tools is not None else find_espeak()
    speaker = Speaker(context, espeak, work_folder(context, "voice"))
    await speaker.start()
    pacer = Pacer(plan.pace_seconds)
    scenes = write_scenes(plan)
    for scene in scenes:
        await speaker.speak(scene)
        await _scene_done(context, pacer, scene, plan.scene_count, "voiced")
    paths = [speaker.path(scene.timing) for scene in scenes]
    timings = [scene.timing for scene in scenes]
    track = await context.run_in_thread(join_tracks, paths, timings, plan.video_seconds)
    await trio.Path(context.artifact_dir / "voice.wav").write_bytes(track)


def _draw(plan: RenderPlan, fonts: Fonts, scene: Scene) -> tuple[bytes, bytes | None]:
    trio.from_thread.check_cancelled()
    image = render_slide(
        fonts, plan.topic, scene.title, scene.text, scene.timing.number, plan.scene_count
    )
    thumbnail = thumbnail_bytes(image) if scene.timing.index == 0 else None
    return png_bytes(image), thumbnail


async def visuals_stage(plan: RenderPlan, tools: VideoTools | None, context: StageContext) -> None:
    """Visuals: one slide per scene (``slides/NN.png``), the first also as ``thumbnail.jpg``."""
    fonts = await context.run_in_thread(load_fonts)
    if not fonts.truetype:
        await context.warn(
            "no TrueType font found, so the slides use Pillow's built-in font: "
            "install fonts-dejavu-core for nicer slides"
        )
    folder = context.artifact_dir / "slides"
    folder.mkdir(exist_ok=True)
    pacer = Pacer(plan.pace_seconds)
    for scene in write_scenes(plan):
        png, thumbnail = await context.run_in_thread(_draw, plan, fonts, scene)
        await trio.Path(folder / f"{scene.timing.stem}.png").write_bytes(png)
        if thumbnail is not None:
            await trio.Path(context.artifact_dir / "thumbnail.jpg").write_bytes(thumbnail)
        await _scene_done(context, pacer, scene, plan.scene_count, "drew")


async def composition_stage(
    plan: RenderPlan, tools: VideoTools | None, context: StageContext
) -> None:
    """Composition: each slide encoded by ffmpeg into an H.264 segment as long as its scene."""
    ffmpeg = tools.ffmpeg if tools is not None else find_ffmpeg()
    segments = work_folder(context, "segments")
    slides = context.artifact_dir / "slides"
    pacer = Pacer(plan.pace_seconds)
    count = plan.scene_count
    for scene in write_scenes(plan):
        timing = scene.timing
        command = segment_command(
            ffmpeg,
            slides / f"{timing.stem}.png",
            timing.frames,
            plan.fps,
            segments / f"{timing.stem}.mp4",
        )

        async def encoding(fraction: float, index: int = timing.index) -> None:
            await context.report(
                (index + fraction) / count,
                f"encoding scene {index + 1} of {count}",
                current_item=index + 1,
                total_items=count,
            )

        await run_ffmpeg(context, command, timing.frames / plan.fps, encoding)
        await _scene_done(context, pacer, scene, count, "encoded")


async def rendering_stage(
    plan: RenderPlan, tools: VideoTools | None, context: StageContext
) -> None:
    """Rendering: the segments and the voice into ``video.mp4`` (H.264 + AAC); register files."""
    ffmpeg = tools.ffmpeg if tools is not None else find_ffmpeg()
    folder = context.artifact_dir
    segments = folder / "work" / "segments"
    names = [segments / f"{timing.stem}.mp4" for timing in plan.scenes]
    listing = segments / "segments.txt"
    await trio.Path(listing).write_text(concat_list(names), encoding="utf-8")
    partial_video = folder / "video.partial.mp4"
    command = final_command(
        ffmpeg, listing, folder / "voice.wav", plan.video_seconds, partial_video
    )
    count = plan.scene_count
    seconds = plan.video_seconds

    async def rendering(fraction: float) -> None:
        reached = fraction * seconds
        scene = min(count, 1 + math.floor(fraction * count))
        await context.report(
            fraction,
            f"rendering video.mp4: {reached:.0f} of {seconds:.0f} s",
            current_item=scene,
            total_items=count,
        )

    await run_ffmpeg(context, command, seconds, rendering)
    partial_video.replace(folder / "video.mp4")
    shutil.rmtree(folder / "work", ignore_errors=True)
    await rendering(1.0)
    for name, mime_type in ARTIFACTS:
        context.add_artifact(name, folder / name, mime_type)
