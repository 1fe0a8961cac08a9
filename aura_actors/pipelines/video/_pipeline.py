"""``VideoPipeline``: params in, the five stages of a real render out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...runtime import Stage
from .._params import validate_params
from ._plan import VIDEO_STAGES, RenderPlan, VideoParams
from ._stages import (
    StageRun,
    composition_stage,
    guarded,
    rendering_stage,
    script_stage,
    visuals_stage,
    voice_stage,
)
from ._tools import VideoTools

_RUNS: dict[str, StageRun] = {
    "Script": script_stage,
    "Voice": voice_stage,
    "Visuals": visuals_stage,
    "Composition": composition_stage,
    "Rendering": rendering_stage,
}


class VideoPipeline:
    """``video``: Script → Voice → Visuals → Composition → Rendering, ending in ``video.mp4``.

    ``tools`` fixes the programs it runs (tests use it to run without
    espeak-ng, or with stand-ins); by default each stage looks them up as it
    starts: ``ffmpeg`` on ``PATH`` else the one of the imageio-ffmpeg wheel,
    and ``espeak-ng`` on ``PATH`` (optional).
    """

    name = "video"

    def __init__(self, tools: VideoTools | None = None) -> None:
        self.tools = tools

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults and check ``topic``, ``durationSeconds`` and ``speed``."""
        return validate_params(VideoParams, self.name, params).model_dump(by_alias=True)

    def build(self, params: dict[str, Any]) -> Sequence[Stage]:
        """The five stages, each with the plan's stall timeout."""
        plan = RenderPlan.from_params(VideoParams.model_validate(params))
        return [
            Stage(
                name=name,
                run=guarded(_RUNS[name], plan, self.tools),
                weight=weight,
                stall_timeout=plan.stall_timeout,
            )
            for name, weight in VIDEO_STAGES
        ]
