"""Helpers of the video pipeline tests: a runtime with a chosen toolset, stand-in programs,
and reading a rendered MP4 with the ffmpeg binary itself (no ffprobe needed)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aura_actors.pipelines import SyntheticPipeline, VideoPipeline, VideoTools
from aura_actors.pipelines.video import MediaInfo, find_espeak, find_ffmpeg, parse_media_info
from aura_actors.runtime import PipelineRegistry, Runtime, RuntimeConfig, open_runtime

FFMPEG = find_ffmpeg()
ESPEAK = find_espeak()


def probe(path: Path) -> MediaInfo:
    """Duration and streams of a media file, from ``ffmpeg -i`` (which exits 1: no output)."""
    done = subprocess.run(
        [FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False
    )
    return parse_media_info(done.stderr)


@asynccontextmanager
async def video_runtime(data_dir: Path, tools: VideoTools | None = None) -> AsyncIterator[Runtime]:
    """A runtime on ``data_dir`` whose ``video`` pipeline runs ``tools`` (default: found ones)."""
    config = RuntimeConfig(data_dir=data_dir, max_concurrent_jobs=8)
    pipelines = PipelineRegistry([VideoPipeline(tools), SyntheticPipeline()])
    async with open_runtime(config, pipelines) as runtime:
        yield runtime


def stand_in(folder: Path, name: str, real: str | None, pattern: str, behaviour: str) -> str:
    """A shell script standing in for ``real``: calls whose arguments contain ``pattern`` do
    ``behaviour`` (``hang`` or ``fail``), the others run ``real`` (or fail when it is None).

    ``hang`` starts a grandchild (``sleep 300``) in the same session, writes the
    script's pid (= its session id, since the stage starts it in a new session)
    to ``<folder>/<name>.pid``, then waits. ``fail`` prints to stderr and exits 1.
    """
    pid_file = folder / f"{name}.pid"
    actions = {
        "hang": f'sleep 300 &\n    echo $$ > "{pid_file}"\n    wait\n    exit 0',
        "fail": 'echo "Conversion failed!" >&2\n    echo "Error: disk on fire" >&2\n    exit 1',
    }
    otherwise = f'exec "{real}" "$@"' if real else "exit 1"
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        f'case "$*" in\n  *{pattern}*)\n    {actions[behaviour]}\n    ;;\nesac\n{otherwise}\n'
    )
    script.chmod(0o755)
    return str(script)
