"""The Voice stage's work: speak each scene with espeak-ng, then join the scenes into one track.

Without espeak-ng (or when it fails) a scene gets a placeholder chime instead,
and the stage emits a ``warning`` saying what to install.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from pathlib import Path

import trio

from ...runtime import StageContext, StageError
from ._audio import VOICE_RATE, chime, fit, read_wav, resample, wav_bytes
from ._plan import SceneTiming
from ._runner import run_tool
from ._script import Scene
from ._tools import ESPEAK_ADVICE

#: espeak-ng's speaking rate (words per minute) bounds; a scene's rate is fitted in between.
MIN_WORDS_PER_MINUTE = 140
MAX_WORDS_PER_MINUTE = 300
#: The share of a scene the speech should fill (the rest is a pause before the next one).
SPEECH_SHARE = 0.85


def words_per_minute(text: str, seconds: float) -> int:
    """The espeak-ng rate that speaks ``text`` in about :data:`SPEECH_SHARE` of ``seconds``."""
    words = max(1, len(text.split()))
    wanted = words * 60 / max(0.5, seconds * SPEECH_SHARE)
    return int(min(MAX_WORDS_PER_MINUTE, max(MIN_WORDS_PER_MINUTE, wanted)))


def espeak_command(espeak: str, scene: Scene, output: Path) -> list[str]:
    """espeak-ng reading the scene's text from stdin and writing a WAV to ``output``."""
    rate = words_per_minute(scene.text, scene.timing.seconds)
    return [espeak, "-v", "en", "-s", str(rate), "-w", str(output), "--stdin"]


class Speaker:
    """Speaks scenes into WAV files, falling back to placeholders when espeak-ng cannot."""

    def __init__(self, context: StageContext, espeak: str | None, folder: Path) -> None:
        self.context = context
        self.espeak = espeak
        self.folder = folder

    async def start(self) -> None:
        """Warn now if espeak-ng is missing. A checkpoint."""
        if self.espeak is None:
            await self.context.warn(
                "espeak-ng is not installed, so the voice track is a placeholder tone: "
                + ESPEAK_ADVICE
            )

    def path(self, timing: SceneTiming) -> Path:
        """Where the speech of scene ``timing`` goes."""
        return self.folder / f"{timing.stem}.wav"

    async def speak(self, scene: Scene) -> None:
        """Speak ``scene`` into :meth:`path` (a placeholder writes nothing). A checkpoint."""
        if self.espeak is None:
            await trio.lowlevel.checkpoint()
            return
        output = self.path(scene.timing)
        command = espeak_command(self.espeak, scene, output)
        try:
            await run_tool(self.context, "espeak-ng", command, scene.text.encode("utf-8"))
        except StageError as exc:
            self.espeak = None
            output.unlink(missing_ok=True)
            await self.context.warn(
                f"{exc.message}; the voice track uses a placeholder tone from scene "
                f"{scene.timing.number} on"
            )


def _scene_track(path: Path, timing: SceneTiming) -> array[int]:
    if not path.is_file():
        return chime(VOICE_RATE, timing.seconds, timing.index)
    try:
        rate, samples = read_wav(path.read_bytes())
    except ValueError:
        return chime(VOICE_RATE, timing.seconds, timing.index)
    return fit(resample(samples, rate, VOICE_RATE), VOICE_RATE, timing.seconds)


def join_tracks(
    paths: Sequence[Path], timings: Sequence[SceneTiming], total_seconds: float
) -> bytes:
    """One WAV of every scene's speech (or chime), each fitted to its scene, ``total_seconds`` long.

    Blocking (reads files; writes none): run it in a worker thread. It checks
    for cancellation between scenes.
    """
    track: array[int] = array("h")
    for path, timing in zip(paths, timings, strict=True):
        trio.from_thread.check_cancelled()
        track.extend(_scene_track(path, timing))
    return wav_bytes(fit(track, VOICE_RATE, total_seconds), VOICE_RATE)
