"""The ``video`` pipeline's params, and the plan of a render: scenes, their times, the pacing."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pydantic

from .._params import ParamsModel

#: Seconds of video per scene, about (scenes share the length evenly).
SECONDS_PER_SCENE = 6.0
#: Frames per second of the rendered video: the slides are still, so few are needed.
FRAMES_PER_SECOND = 5
#: Seconds a paced stage spends on one scene at least, at ``speed`` 1 (real work included).
PACE_SECONDS_PER_SCENE = 0.25
#: A stage that reports nothing for this long (at least) fails with ``stalled``.
MIN_STALL_SECONDS = 60.0
#: (name, weight) of each stage: the contract's ranges 0–15–35–65–85–100.
VIDEO_STAGES = (
    ("Script", 15.0),
    ("Voice", 20.0),
    ("Visuals", 30.0),
    ("Composition", 20.0),
    ("Rendering", 15.0),
)


class VideoParams(ParamsModel):
    """Params of the ``video`` pipeline: ``topic``, ``durationSeconds`` (5–600), ``speed`` (> 0)."""

    topic: str = pydantic.Field(min_length=1, max_length=500)
    duration_seconds: float = pydantic.Field(default=30.0, ge=5, le=600)
    speed: float = pydantic.Field(default=1.0, gt=0, le=1000)

    @pydantic.field_validator("topic")
    @classmethod
    def _topic_has_text(cls, topic: str) -> str:
        if not topic.strip():
            raise ValueError("topic must not be blank")
        return topic


@dataclass(frozen=True, slots=True)
class SceneTiming:
    """Where one scene sits in the video: ``index`` from 0, ``start`` and ``seconds``."""

    index: int
    start: float
    seconds: float
    frames: int

    @property
    def number(self) -> int:
        """The scene's number from 1, as people count (and as files are named)."""
        return self.index + 1

    @property
    def stem(self) -> str:
        """The file name stem of this scene's files: ``01``, ``02``, …"""
        return f"{self.number:02d}"


@dataclass(frozen=True, slots=True)
class RenderPlan:
    """Everything about a render that follows from its params alone (no I/O)."""

    topic: str
    duration_seconds: float
    speed: float
    scenes: tuple[SceneTiming, ...]
    fps: int = FRAMES_PER_SECOND

    @classmethod
    def from_params(cls, params: VideoParams) -> RenderPlan:
        """Split ``durationSeconds`` into scenes of about :data:`SECONDS_PER_SCENE` each.

        Frame counts come from the rounded scene boundaries, so the segments
        add up to the video's length to the frame, however many there are.
        """
        duration = params.duration_seconds
        count = max(1, round(duration / SECONDS_PER_SCENE))
        length = duration / count
        scenes = []
        for index in range(count):
            first = round(index * length * FRAMES_PER_SECOND)
            last = round((index + 1) * length * FRAMES_PER_SECOND)
            scenes.append(SceneTiming(index, index * length, length, max(1, last - first)))
        return cls(params.topic, duration, params.speed, tuple(scenes))

    @property
    def scene_count(self) -> int:
        """How many scenes the video has."""
        return len(self.scenes)

    @property
    def pace_seconds(self) -> float:
        """The least time a paced stage spends on one scene: ``PACE_SECONDS_PER_SCENE / speed``."""
        return PACE_SECONDS_PER_SCENE / self.speed

    @property
    def stall_timeout(self) -> float:
        """The stall timeout of every stage: well above one scene's pace, at least a minute."""
        return max(MIN_STALL_SECONDS, 4 * self.pace_seconds)

    @property
    def video_frames(self) -> int:
        """Frames in the whole video."""
        return sum(scene.frames for scene in self.scenes)

    @property
    def video_seconds(self) -> float:
        """The length of the rendered video: its frames at :data:`FRAMES_PER_SECOND`."""
        return self.video_frames / self.fps


def format_clock(seconds: float) -> str:
    """``m:ss`` of ``seconds`` (rounded down), as the script shows scene times."""
    whole = math.floor(seconds + 1e-9)
    return f"{whole // 60}:{whole % 60:02d}"
