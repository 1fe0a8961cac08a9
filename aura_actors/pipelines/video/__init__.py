"""The ``video`` pipeline: a real MP4 (slides, speech, H.264 + AAC) from a topic.

One module per concern: ``_plan`` (params, scenes, pacing), ``_script``
(scene texts), ``_audio`` and ``_voice`` (espeak-ng and the voice track),
``_slides`` (Pillow), ``_ffmpeg`` (command lines and the sans-IO progress
parser), ``_runner`` (running ffmpeg in a stage), ``_stages`` and
``_pipeline``.
"""

from ._ffmpeg import FfmpegProgress, MediaInfo, ProgressParser, parse_media_info
from ._pipeline import VideoPipeline
from ._plan import (
    FRAMES_PER_SECOND,
    PACE_SECONDS_PER_SCENE,
    SECONDS_PER_SCENE,
    VIDEO_STAGES,
    RenderPlan,
    SceneTiming,
    VideoParams,
)
from ._script import Scene, script_text, write_scenes
from ._tools import VideoTools, bundled_ffmpeg, find_espeak, find_ffmpeg, find_tools

__all__ = [
    "FRAMES_PER_SECOND",
    "PACE_SECONDS_PER_SCENE",
    "SECONDS_PER_SCENE",
    "VIDEO_STAGES",
    "FfmpegProgress",
    "MediaInfo",
    "ProgressParser",
    "RenderPlan",
    "Scene",
    "SceneTiming",
    "VideoParams",
    "VideoPipeline",
    "VideoTools",
    "bundled_ffmpeg",
    "find_espeak",
    "find_ffmpeg",
    "find_tools",
    "parse_media_info",
    "script_text",
    "write_scenes",
]
