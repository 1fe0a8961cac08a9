"""Mono 16-bit PCM in memory: read a WAV, fit it to a length, join scenes, write a WAV.

Pure functions (no trio, no files): the Voice stage runs them in a worker thread.
"""

from __future__ import annotations

import io
import math
import sys
import wave
from array import array

#: The sample rate of the voice track (espeak-ng's own).
VOICE_RATE = 22_050
#: Seconds of fade-out where a scene's speech is cut to fit its scene.
FADE_SECONDS = 0.03
#: Seconds of the placeholder chime at the start of each scene.
CHIME_SECONDS = 0.6


def _samples(frames: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(frames)
    if sys.byteorder == "big":  # WAV is little-endian
        samples.byteswap()
    return samples


def read_wav(data: bytes) -> tuple[int, array[int]]:
    """``(rate, samples)`` of a 16-bit PCM WAV; a multi-channel file gives its first channel.

    Raises :class:`ValueError` for anything else (another sample width, a broken file).
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as track:
            if track.getsampwidth() != 2:
                raise ValueError(f"expected 16-bit samples, not {8 * track.getsampwidth()}-bit")
            channels = track.getnchannels()
            rate = track.getframerate()
            frames = track.readframes(track.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a readable WAV file: {exc}") from None
    samples = _samples(frames)
    if channels > 1:
        samples = samples[::channels]
    return rate, samples


def resample(samples: array[int], source_rate: int, target_rate: int) -> array[int]:
    """``samples`` at ``target_rate`` (nearest sample; speech needs no better)."""
    if source_rate == target_rate or not samples:
        return samples
    count = round(len(samples) * target_rate / source_rate)
    step = source_rate / target_rate
    last = len(samples) - 1
    return array("h", (samples[min(last, int(i * step))] for i in range(count)))


def fit(samples: array[int], rate: int, seconds: float) -> array[int]:
    """``samples`` padded with silence or cut (with a short fade) to exactly ``seconds``."""
    wanted = round(seconds * rate)
    if len(samples) <= wanted:
        return samples + array("h", bytes(2 * (wanted - len(samples))))
    cut = samples[:wanted]
    fade = min(wanted, round(FADE_SECONDS * rate))
    for offset in range(fade):
        index = wanted - fade + offset
        cut[index] = int(cut[index] * (fade - offset) / fade)
    return cut


def chime(rate: int, seconds: float, index: int) -> array[int]:
    """The placeholder for a scene without speech: a soft chime, then silence, ``seconds`` long.

    The pitch rises a semitone per scene (``index``), so scene changes can be heard.
    """
    pitch = 440.0 * 2 ** ((index % 12) / 12)
    length = min(round(CHIME_SECONDS * rate), round(seconds * rate))
    tone = array(
        "h",
        (
            int(6000 * math.sin(2 * math.pi * pitch * i / rate) * math.exp(-6 * i / max(1, length)))
            for i in range(length)
        ),
    )
    return fit(tone, rate, seconds)


def wav_bytes(samples: array[int], rate: int) -> bytes:
    """A mono 16-bit PCM WAV file of ``samples`` at ``rate``."""
    frames = array("h", samples)
    if sys.byteorder == "big":
        frames.byteswap()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as track:
        track.setnchannels(1)
        track.setsampwidth(2)
        track.setframerate(rate)
        track.writeframes(frames.tobytes())
    return buffer.getvalue()
