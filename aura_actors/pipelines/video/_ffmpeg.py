"""ffmpeg without I/O: the command lines of a render, and parsers of what ffmpeg prints.

The options used are old and common (ffmpeg 4 has them all), so a system
ffmpeg on ``PATH`` works as well as the one of the imageio-ffmpeg wheel; it
needs the libx264 encoder, which Debian's, Ubuntu's and the wheel's have.

:class:`ProgressParser` reads the ``key=value`` blocks of ``-progress pipe:1``
(bytes in, :class:`FfmpegProgress` out), in the manner of a sans-IO protocol
parser, so it is tested on canned output without running ffmpeg.
:func:`parse_media_info` reads the stream lines ``ffmpeg -i FILE`` prints.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: x264 preset: fast, and still slides compress well even so.
PRESET = "veryfast"
#: Bit rate of the AAC voice track (mono speech at espeak-ng's 22.05 kHz).
AUDIO_BITRATE = "64k"
#: The longest progress line kept; a longer one is dropped (ffmpeg never writes one).
MAX_LINE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class FfmpegProgress:
    """One ``-progress`` block: output time reached (seconds, or ``None`` before the first
    frame), frames written, encoding speed (× real time) and whether it was the last block."""

    out_seconds: float | None
    frame: int | None
    speed: float | None
    ended: bool

    def fraction(self, expected_seconds: float) -> float:
        """How far along (0–1) an output of ``expected_seconds`` is; 1 once ffmpeg ended."""
        if self.ended:
            return 1.0
        if self.out_seconds is None or expected_seconds <= 0:
            return 0.0
        return min(1.0, max(0.0, self.out_seconds / expected_seconds))


def _parse_clock(text: str) -> float | None:
    match = re.fullmatch(r"(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", text)
    if match is None:
        return None
    sign, hours, minutes, seconds = match.groups()
    value = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return -value if sign else value


def _parse_int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _out_seconds(fields: dict[str, str]) -> float | None:
    # out_time_ms is in microseconds too (an old ffmpeg quirk); out_time is HH:MM:SS.micro.
    for key in ("out_time_us", "out_time_ms"):
        micros = _parse_int(fields.get(key))
        if micros is not None:
            return max(0.0, micros / 1_000_000)
    clock = _parse_clock(fields.get("out_time", ""))
    return None if clock is None else max(0.0, clock)


def _speed(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip().rstrip("x"))
    except ValueError:
        return None


class ProgressParser:
    """Turns the bytes of ``ffmpeg -progress pipe:1`` into :class:`FfmpegProgress` values.

    Feed it chunks as they arrive, split anywhere; each block ending in
    ``progress=continue`` or ``progress=end`` gives one value. Values such as
    ``N/A`` are read as unknown, never as an error.
    """

    __slots__ = ("_buffer", "_fields", "ended")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._fields: dict[str, str] = {}
        #: Whether the ``progress=end`` block has been read.
        self.ended = False

    def feed(self, data: bytes | bytearray) -> list[FfmpegProgress]:
        """The blocks completed by ``data`` (often none, sometimes several)."""
        self._buffer += data
        blocks = []
        while (newline := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:newline])
            del self._buffer[: newline + 1]
            block = self._line(line.decode("utf-8", "replace").strip())
            if block is not None:
                blocks.append(block)
        if len(self._buffer) > MAX_LINE_BYTES:
            self._buffer.clear()
        return blocks

    def _line(self, line: str) -> FfmpegProgress | None:
        key, separator, value = line.partition("=")
        if not separator:
            return None
        key, value = key.strip(), value.strip()
        if key != "progress":
            self._fields[key] = value
            return None
        ended = value == "end"
        self.ended = self.ended or ended
        fields, self._fields = self._fields, {}
        return FfmpegProgress(
            out_seconds=_out_seconds(fields),
            frame=_parse_int(fields.get("frame")),
            speed=_speed(fields.get("speed")),
            ended=ended,
        )


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What ``ffmpeg -i FILE`` says of a file: its duration and the codec of each stream."""

    duration_seconds: float | None
    video_codecs: tuple[str, ...]
    audio_codecs: tuple[str, ...]
    width: int | None = None
    height: int | None = None


def parse_media_info(text: str) -> MediaInfo:
    """Read the ``Duration:`` and ``Stream #…: Video: …``/``Audio: …`` lines of ``ffmpeg -i``."""
    duration = None
    match = re.search(r"Duration:\s*(\d+:\d{2}:\d{2}(?:\.\d+)?)", text)
    if match is not None:
        duration = _parse_clock(match.group(1))
    video = tuple(re.findall(r"Stream #\S+.*?: Video: (\w+)", text))
    audio = tuple(re.findall(r"Stream #\S+.*?: Audio: (\w+)", text))
    size = re.search(r"Stream #\S+.*?: Video: .*?, (\d{2,5})x(\d{2,5})", text)
    width, height = (int(size.group(1)), int(size.group(2))) if size else (None, None)
    return MediaInfo(duration, video, audio, width, height)


def _base(ffmpeg: str) -> list[str]:
    return [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        "-y",
    ]


def segment_command(ffmpeg: str, slide: Path, frames: int, fps: int, output: Path) -> list[str]:
    """Encode one still slide into an H.264 segment of ``frames`` frames at ``fps``.

    The picture is decoded and converted once, then repeated (``tpad``): cheaper
    than looping the input, which decodes the PNG again for every frame.
    """
    return [
        *_base(ffmpeg),
        "-framerate",
        str(fps),
        "-i",
        str(slide),
        "-vf",
        f"format=yuv420p,tpad=stop_mode=clone:stop={max(0, frames - 1)}",
        "-frames:v",
        str(frames),
        "-c:v",
        "libx264",
        "-preset",
        PRESET,
        "-tune",
        "stillimage",
        "-g",
        str(4 * fps),
        "-an",
        "-f",
        "mp4",
        str(output),
    ]


def concat_list(segments: Sequence[Path]) -> str:
    """The concat demuxer's list of ``segments`` (names relative to the list's folder)."""
    return "".join(f"file '{segment.name}'\n" for segment in segments)


def final_command(
    ffmpeg: str, segment_list: Path, voice: Path, seconds: float, output: Path
) -> list[str]:
    """Join the segments (copied, not re-encoded) with the voice (to AAC) into an MP4."""
    return [
        *_base(ffmpeg),
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(segment_list),
        "-i",
        str(voice),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-b:a",
        AUDIO_BITRATE,
        "-af",
        "apad",
        "-t",
        f"{seconds:.3f}",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(output),
    ]
