"""The programs a render runs: ffmpeg (always) and espeak-ng (when installed)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from ...runtime import StageError

#: What to do when espeak-ng is missing (the warning's advice).
ESPEAK_ADVICE = "install espeak-ng for speech (Debian/Ubuntu: `apt-get install espeak-ng`)"
#: What to do when no ffmpeg is found at all.
FFMPEG_ADVICE = (
    "reinstall aura-actors with pip (its imageio-ffmpeg dependency brings ffmpeg), "
    "or install ffmpeg (`apt-get install ffmpeg`)"
)


@dataclass(frozen=True, slots=True)
class VideoTools:
    """Paths of the programs a render runs; ``espeak`` is ``None`` when it is not installed."""

    ffmpeg: str
    espeak: str | None


def bundled_ffmpeg() -> str | None:
    """The ffmpeg binary of the ``imageio-ffmpeg`` wheel, or ``None`` if it has none."""
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]  # imported late: it is slow-ish

        path = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None
    return str(path)


def find_ffmpeg() -> str:
    """A system ffmpeg on ``PATH`` if there is one, else the bundled one; raises ``StageError``."""
    path = shutil.which("ffmpeg") or bundled_ffmpeg()
    if path is None:
        raise StageError(
            "no ffmpeg found: neither on PATH nor from the imageio-ffmpeg package",
            code="ffmpeg_missing",
            remediation=FFMPEG_ADVICE,
        )
    return path


def find_espeak() -> str | None:
    """``espeak-ng`` on ``PATH``, or ``None``."""
    return shutil.which("espeak-ng")


def find_tools() -> VideoTools:
    """Look both programs up now (the Voice and Composition stages call this as they start)."""
    return VideoTools(ffmpeg=find_ffmpeg(), espeak=find_espeak())
