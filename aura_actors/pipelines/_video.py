"""The ``video`` pipeline: Script → Voice → Visuals → Composition → Rendering.

The work is simulated (timed by ``durationSeconds`` and ``speed``), but every
stage writes a real file: a script, a WAV voice track (synthesised in a
worker thread), an SVG storyboard and a render manifest.
"""

from __future__ import annotations

import html
import json
import math
import struct
import wave
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pydantic
import trio

from ..runtime import Stage, StageContext
from ._params import ParamsModel, validate_params

#: Seconds of simulated work per second of video, at speed 1.
WORK_SECONDS_PER_VIDEO_SECOND = 0.4
#: Seconds of video per scene.
SECONDS_PER_SCENE = 6
#: Images drawn per scene.
IMAGES_PER_SCENE = 3
#: Render segments.
RENDER_SEGMENTS = 10
#: (name, weight) of each stage: the contract's ranges 0–15–35–65–85–100.
VIDEO_STAGES = (
    ("Script", 15.0),
    ("Voice", 20.0),
    ("Visuals", 30.0),
    ("Composition", 20.0),
    ("Rendering", 15.0),
)


class VideoParams(ParamsModel):
    """Params of the ``video`` pipeline."""

    topic: str = pydantic.Field(min_length=1, max_length=500)
    duration_seconds: float = pydantic.Field(default=30.0, ge=5, le=600)
    speed: float = pydantic.Field(default=1.0, gt=0, le=1000)

    @pydantic.field_validator("topic")
    @classmethod
    def _topic_has_text(cls, topic: str) -> str:
        if not topic.strip():
            raise ValueError("topic must not be blank")
        return topic

    @property
    def scenes(self) -> int:
        return max(1, math.ceil(self.duration_seconds / SECONDS_PER_SCENE))

    def stage_seconds(self, weight: float) -> float:
        total = WORK_SECONDS_PER_VIDEO_SECOND * self.duration_seconds / self.speed
        return total * weight / 100.0


async def _work_through(context: StageContext, seconds: float, items: int, noun: str) -> None:
    for item in range(1, items + 1):
        await trio.sleep(seconds / items)
        await context.report(
            item / items, f"{noun} {item} of {items}", current_item=item, total_items=items
        )


async def _script(params: VideoParams, context: StageContext) -> None:
    await _work_through(context, params.stage_seconds(15), params.scenes, "writing scene")
    lines = [f"# {params.topic}", ""]
    for scene in range(1, params.scenes + 1):
        lines.append(f"Scene {scene}: {params.topic}, part {scene} of {params.scenes}.")
    path = context.artifact_dir / "script.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    context.add_artifact("script.txt", path, "text/plain")


def _write_voice_track(path: Path, scenes: int, seconds: float) -> None:
    """Write a mono 8 kHz WAV: one tone per scene. Runs in a worker thread."""
    rate = 8000
    per_scene = max(1, int(rate * seconds / scenes))
    with wave.open(str(path), "wb") as track:
        track.setnchannels(1)
        track.setsampwidth(2)
        track.setframerate(rate)
        for scene in range(scenes):
            trio.from_thread.check_cancelled()
            pitch = 220.0 * 2 ** (scene / 12)
            frames = b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * pitch * i / rate)))
                for i in range(per_scene)
            )
            track.writeframes(frames)


async def _voice(params: VideoParams, context: StageContext) -> None:
    await _work_through(context, params.stage_seconds(20), params.scenes, "voicing scene")
    path = context.artifact_dir / "voice.wav"
    seconds = min(params.duration_seconds, 30.0)
    await context.run_in_thread(_write_voice_track, path, params.scenes, seconds)
    context.add_artifact("voice.wav", path, "audio/wav")


async def _visuals(params: VideoParams, context: StageContext) -> None:
    images = params.scenes * IMAGES_PER_SCENE
    await _work_through(context, params.stage_seconds(30), images, "drawing image")
    width = 160 * IMAGES_PER_SCENE
    height = 100 * params.scenes
    cells = []
    for scene in range(params.scenes):
        for image in range(IMAGES_PER_SCENE):
            hue = (scene * 47 + image * 19) % 360
            cells.append(
                f'<rect x="{image * 160 + 4}" y="{scene * 100 + 4}" width="152" height="92" '
                f'fill="hsl({hue},60%,55%)"/>'
            )
    title = html.escape(params.topic)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f"<title>{title}</title>{''.join(cells)}</svg>\n"
    )
    path = context.artifact_dir / "storyboard.svg"
    path.write_text(svg, encoding="utf-8")
    context.add_artifact("storyboard.svg", path, "image/svg+xml")


async def _composition(params: VideoParams, context: StageContext) -> None:
    await _work_through(context, params.stage_seconds(20), params.scenes, "composing scene")


async def _rendering(params: VideoParams, context: StageContext) -> None:
    await _work_through(context, params.stage_seconds(15), RENDER_SEGMENTS, "rendering segment")
    manifest = {
        "topic": params.topic,
        "durationSeconds": params.duration_seconds,
        "scenes": params.scenes,
        "tracks": {"script": "script.txt", "voice": "voice.wav", "visuals": "storyboard.svg"},
    }
    path = context.artifact_dir / "render.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    context.add_artifact("render.json", path, "application/json")


_STAGE_FUNCTIONS = {
    "Script": _script,
    "Voice": _voice,
    "Visuals": _visuals,
    "Composition": _composition,
    "Rendering": _rendering,
}


class VideoPipeline:
    """``video``: five stages with the contract's progress ranges, ending in real files."""

    name = "video"

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults and check ``topic``, ``durationSeconds`` and ``speed``."""
        return validate_params(VideoParams, self.name, params).model_dump(by_alias=True)

    def build(self, params: dict[str, Any]) -> Sequence[Stage]:
        """The five stages, each with a stall timeout well above its item time."""
        model = VideoParams.model_validate(params)
        stages = []
        for name, weight in VIDEO_STAGES:
            stall_timeout = max(30.0, 10 * model.stage_seconds(weight))
            stages.append(
                Stage(
                    name=name,
                    run=partial(_STAGE_FUNCTIONS[name], model),
                    weight=weight,
                    stall_timeout=stall_timeout,
                )
            )
        return stages
