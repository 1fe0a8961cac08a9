"""The built-in pipelines: ``video`` and ``synthetic``."""

from ..runtime import PipelineRegistry
from ._synthetic import SyntheticParams, SyntheticPipeline
from .video import VIDEO_STAGES, VideoParams, VideoPipeline, VideoTools


def default_pipelines() -> PipelineRegistry:
    """A registry with the built-in pipelines."""
    return PipelineRegistry([VideoPipeline(), SyntheticPipeline()])


__all__ = [
    "VIDEO_STAGES",
    "SyntheticParams",
    "SyntheticPipeline",
    "VideoParams",
    "VideoPipeline",
    "VideoTools",
    "default_pipelines",
]
