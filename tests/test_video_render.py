"""The ``video`` pipeline renders a real MP4: stages, progress, files, and how it fails.

These run real programs (espeak-ng when installed, ffmpeg) on the real clock,
with ``speed`` 1000 so the pacing is all but gone; a 5 s video takes about a
second.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import pytest
from conftest import job_events, of_type
from PIL import Image
from support.video import ESPEAK, FFMPEG, probe, stand_in, video_runtime

from aura_actors.pipelines import VideoTools
from aura_actors.runtime import Event, EventType, JobStatus

RANGES = {
    "Script": (0.0, 15.0),
    "Voice": (15.0, 35.0),
    "Visuals": (35.0, 65.0),
    "Composition": (65.0, 85.0),
    "Rendering": (85.0, 100.0),
}
ARTIFACTS = [
    ("video.mp4", "video/mp4"),
    ("thumbnail.jpg", "image/jpeg"),
    ("voice.wav", "audio/wav"),
    ("script.txt", "text/plain"),
]
FAST = 1000


def _progress_by_stage(events: list[Event]) -> dict[str, list[dict[str, Any]]]:
    by_stage: dict[str, list[dict[str, Any]]] = {name: [] for name in RANGES}
    current = None
    for event in events:
        if event.type is EventType.STEP_STATUS and event.data["state"] == "Started":
            current = event.data["step"]
        if event.type is EventType.STEP_PROGRESS:
            assert event.data["step"] == current
            by_stage[current].append(event.data)
    return by_stage


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as track:
        return track.getnframes() / track.getframerate()


async def test_a_5_second_video_is_a_real_mp4(tmp_path: Path) -> None:
    async with video_runtime(tmp_path) as rt:
        params = {"topic": "Tides <and> moons", "durationSeconds": 5, "speed": FAST}
        job = await rt.submit("video", params)
        events = await job_events(rt, job.id)
        job = await rt.get(job.id)
    assert job.status is JobStatus.DONE, [e.data for e in events[-2:]]
    warnings = [e.data["message"] for e in of_type(events, EventType.WARNING)]
    if ESPEAK:
        assert warnings == []
    else:  # a machine without espeak-ng still renders, with a placeholder voice
        assert len(warnings) == 1 and "espeak-ng is not installed" in warnings[0]
    artifacts = events[-1].data["artifacts"]
    assert [(a["name"], a["mimeType"]) for a in artifacts] == ARTIFACTS
    assert job.snapshot()["artifacts"] == artifacts
    folder = tmp_path / "artifacts" / job.id
    for artifact in artifacts:
        path = tmp_path / artifact["path"]
        assert path.parent == folder and path.stat().st_size == artifact["sizeBytes"] > 0
    info = probe(folder / "video.mp4")
    assert info.video_codecs == ("h264",) and info.audio_codecs == ("aac",), info
    assert (info.width, info.height) == (1280, 720)
    assert info.duration_seconds == pytest.approx(5.0, abs=0.25)
    assert _wav_seconds(folder / "voice.wav") == pytest.approx(5.0, abs=0.01)
    with Image.open(folder / "thumbnail.jpg") as thumbnail:
        assert thumbnail.size == (640, 360)
    with Image.open(folder / "slides" / "01.png") as slide:
        assert slide.size == (1280, 720)
    assert (folder / "script.txt").read_text().startswith("# Tides <and> moons\n")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["slides", *(name for name, _ in ARTIFACTS)]
    ), "the work folder and partial files are gone"


async def test_stages_report_items_and_stay_in_their_ranges(tmp_path: Path) -> None:
    async with video_runtime(tmp_path) as rt:
        job = await rt.submit("video", {"topic": "Volcanoes", "durationSeconds": 12, "speed": FAST})
        events = await job_events(rt, job.id)
        job = await rt.get(job.id)
    assert job.status is JobStatus.DONE
    steps = of_type(events, EventType.STEP_STATUS)
    assert [(e.data["step"], e.data["state"]) for e in steps] == [
        (name, state) for name in RANGES for state in ("Started", "Completed")
    ]
    for name, reports in _progress_by_stage(events).items():
        low, high = RANGES[name]
        assert reports, f"{name} reported no progress"
        assert all(low <= r["progressPct"] <= high for r in reports), name
        assert {r["totalItems"] for r in reports} == {2}, name
        items = [r["currentItem"] for r in reports]
        assert items == sorted(items) and items[-1] == 2 and items[0] >= 1, name
        assert reports[-1]["stepProgressPct"] == 100.0
    composition = _progress_by_stage(events)["Composition"]
    assert len(composition) > 2, "ffmpeg's own progress moves the bar, not only scene ends"
    pcts = [e.data["progressPct"] for e in events if "progressPct" in e.data]
    assert pcts == sorted(pcts) and pcts[-1] == 100.0


async def test_without_espeak_a_placeholder_tone_and_a_warning(tmp_path: Path) -> None:
    tools = VideoTools(ffmpeg=FFMPEG, espeak=None)
    async with video_runtime(tmp_path, tools) as rt:
        job = await rt.submit("video", {"topic": "Bees", "durationSeconds": 5, "speed": FAST})
        events = await job_events(rt, job.id)
        job = await rt.get(job.id)
    assert job.status is JobStatus.DONE
    (warning,) = of_type(events, EventType.WARNING)
    assert warning.data["step"] == "Voice"
    assert "espeak-ng is not installed" in warning.data["message"]
    assert "apt-get install espeak-ng" in warning.data["message"]
    voice = tmp_path / "artifacts" / job.id / "voice.wav"
    with wave.open(str(voice), "rb") as track:
        frames = track.readframes(track.getnframes())
    assert any(frames), "the placeholder is a tone, not silence"
    assert probe(voice.with_name("video.mp4")).audio_codecs == ("aac",)


async def test_a_failing_espeak_falls_back_to_the_tone(tmp_path: Path) -> None:
    espeak = stand_in(tmp_path, "espeak-ng", None, "", "fail")
    async with video_runtime(tmp_path, VideoTools(ffmpeg=FFMPEG, espeak=espeak)) as rt:
        job = await rt.submit("video", {"topic": "Ants", "durationSeconds": 12, "speed": FAST})
        events = await job_events(rt, job.id)
        job = await rt.get(job.id)
    assert job.status is JobStatus.DONE
    (warning,) = of_type(events, EventType.WARNING)
    message = warning.data["message"]
    assert "espeak-ng failed with exit status 1: Error: disk on fire" in message
    assert "placeholder tone from scene 1 on" in message


@pytest.mark.parametrize(("stage", "pattern"), [("Composition", "tpad"), ("Rendering", "concat")])
async def test_a_failing_ffmpeg_fails_the_job_and_removes_its_files(
    tmp_path: Path, stage: str, pattern: str
) -> None:
    ffmpeg = stand_in(tmp_path, "ffmpeg", FFMPEG, pattern, "fail")
    async with video_runtime(tmp_path, VideoTools(ffmpeg=ffmpeg, espeak=ESPEAK)) as rt:
        job = await rt.submit("video", {"topic": "Ants", "durationSeconds": 5, "speed": FAST})
        events = await job_events(rt, job.id)
        job = await rt.get(job.id)
    assert job.status is JobStatus.FAILED
    failed = events[-1]
    assert failed.data["step"] == stage
    (error,) = failed.data["errors"]
    assert error["code"] == "ffmpeg_failed"
    assert error["message"] == "ffmpeg failed with exit status 1: Error: disk on fire"
    assert f"{stage}: ffmpeg: Conversion failed!" in failed.data["logs"]
    assert not (tmp_path / "artifacts" / job.id).exists(), "a failed job leaves no files"
    assert job.artifacts == []


def test_probe_reads_a_wav_too(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as track:
        track.setnchannels(1)
        track.setsampwidth(2)
        track.setframerate(8000)
        track.writeframes(b"\0\0" * 8000)
    (tmp_path / "one.wav").write_bytes(buffer.getvalue())
    info = probe(tmp_path / "one.wav")
    assert info.audio_codecs == ("pcm_s16le",) and info.duration_seconds == 1.0
