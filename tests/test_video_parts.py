"""The video pipeline's parts without running a job: plan, script, audio, slides, ffmpeg I/O."""

from __future__ import annotations

import io
from array import array
from pathlib import Path

import pytest
from PIL import Image

from aura_actors.pipelines.video import (
    FfmpegProgress,
    ProgressParser,
    RenderPlan,
    VideoParams,
    parse_media_info,
    script_text,
    write_scenes,
)
from aura_actors.pipelines.video._audio import chime, fit, read_wav, resample, wav_bytes
from aura_actors.pipelines.video._ffmpeg import concat_list, final_command, segment_command
from aura_actors.pipelines.video._script import spoken_topic
from aura_actors.pipelines.video._slides import (
    clip,
    load_fonts,
    png_bytes,
    render_slide,
    thumbnail_bytes,
    wrap,
)
from aura_actors.pipelines.video._voice import words_per_minute


def plan_of(duration: float, speed: float = 1.0, topic: str = "Tides") -> RenderPlan:
    params = VideoParams.model_validate(
        {"topic": topic, "durationSeconds": duration, "speed": speed}
    )
    return RenderPlan.from_params(params)


# -- ffmpeg -progress ----------------------------------------------------------------------

#: What ``ffmpeg -progress pipe:1`` wrote for a 6 s segment (two blocks of many, and the end).
CANNED_PROGRESS = b"""\
frame=0
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=44
out_time_us=N/A
out_time_ms=N/A
out_time=N/A
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=14
fps=13.90
stream_0_0_q=28.0
bitrate=  30.1kbits/s
total_size=10540
out_time_us=2800000
out_time_ms=2800000
out_time=00:00:02.800000
dup_frames=0
drop_frames=0
speed=2.78x
progress=continue
frame=30
fps=27.10
stream_0_0_q=-1.0
bitrate=  94.2kbits/s
total_size=70656
out_time_us=6000000
out_time_ms=6000000
out_time=00:00:06.000000
dup_frames=0
drop_frames=0
speed=5.42x
progress=end
"""


def test_progress_parser_reads_every_block() -> None:
    parser = ProgressParser()
    blocks = parser.feed(CANNED_PROGRESS)
    assert blocks == [
        FfmpegProgress(out_seconds=None, frame=0, speed=None, ended=False),
        FfmpegProgress(out_seconds=2.8, frame=14, speed=2.78, ended=False),
        FfmpegProgress(out_seconds=6.0, frame=30, speed=5.42, ended=True),
    ]
    assert parser.ended
    assert [block.fraction(6.0) for block in blocks] == [0.0, pytest.approx(2.8 / 6), 1.0]


@pytest.mark.parametrize("size", [1, 2, 7, 64])
def test_progress_parser_takes_chunks_split_anywhere(size: int) -> None:
    parser = ProgressParser()
    blocks = []
    for start in range(0, len(CANNED_PROGRESS), size):
        blocks += parser.feed(CANNED_PROGRESS[start : start + size])
    assert blocks == ProgressParser().feed(CANNED_PROGRESS)


def test_progress_parser_falls_back_and_tolerates_noise() -> None:
    parser = ProgressParser()
    # no out_time_us: out_time_ms (microseconds, despite its name), then out_time; CRLF; junk
    text = (
        b"garbage line\r\nout_time_ms=1500000\r\nprogress=continue\r\n"
        b"out_time=00:01:02.500000\nspeed= 12x\nprogress=continue\n"
        b"out_time=-00:00:00.066000\nprogress=continue\n"
        b"frame=x\nprogress=end\n"
    )
    assert parser.feed(text) == [
        FfmpegProgress(1.5, None, None, False),
        FfmpegProgress(62.5, None, 12.0, False),
        FfmpegProgress(0.0, None, None, False),
        FfmpegProgress(None, None, None, True),
    ]
    assert parser.feed(b"x" * 10_000) == []  # an endless line is dropped, not kept
    assert parser.feed(b"\nprogress=continue\n") == [FfmpegProgress(None, None, None, False)]


def test_progress_fraction_is_clamped() -> None:
    assert FfmpegProgress(12.0, 1, 1.0, False).fraction(6.0) == 1.0
    assert FfmpegProgress(3.0, 1, 1.0, False).fraction(0.0) == 0.0
    assert FfmpegProgress(None, None, None, True).fraction(6.0) == 1.0


def test_media_info_from_ffmpeg_banner() -> None:
    text = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'video.mp4':
  Metadata:
    major_brand     : isom
  Duration: 00:00:05.00, start: 0.000000, bitrate: 414 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), \
1280x720, 330 kb/s, 5 fps, 5 tbr, 10240 tbn (default)
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 78 kb/s
At least one output file must be specified
"""
    info = parse_media_info(text)
    assert info.duration_seconds == 5.0
    assert (info.video_codecs, info.audio_codecs) == (("h264",), ("aac",))
    assert (info.width, info.height) == (1280, 720)
    assert parse_media_info("nothing here").duration_seconds is None


def test_commands_use_fast_still_image_settings() -> None:
    segment = segment_command("ffmpeg", Path("s/01.png"), 30, 5, Path("w/01.mp4"))
    assert segment[:2] == ["ffmpeg", "-nostdin"]
    assert segment[segment.index("-progress") :][:2] == ["-progress", "pipe:1"]
    joined = " ".join(segment)
    for flag in ("-tune stillimage", "-preset veryfast", "-frames:v 30", "stop=29", "libx264"):
        assert flag in joined
    final = " ".join(final_command("ffmpeg", Path("w/list.txt"), Path("v.wav"), 30, Path("o.mp4")))
    for flag in ("-f concat", "-c:v copy", "-c:a aac", "-t 30.000", "+faststart"):
        assert flag in final
    assert concat_list([Path("/a/01.mp4"), Path("/a/02.mp4")]) == "file '01.mp4'\nfile '02.mp4'\n"


# -- plan and script -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "scenes"), [(5, 1), (8, 1), (9.5, 2), (30, 5), (31, 5), (600, 100)]
)
def test_scenes_are_about_six_seconds_and_add_up(duration: float, scenes: int) -> None:
    plan = plan_of(duration)
    assert plan.scene_count == scenes
    assert [scene.index for scene in plan.scenes] == list(range(scenes))
    assert sum(scene.seconds for scene in plan.scenes) == pytest.approx(duration)
    assert plan.video_frames == round(duration * plan.fps)
    assert plan.video_seconds == pytest.approx(duration, abs=1 / plan.fps)
    assert plan.scenes[-1].stem == f"{scenes:02d}"


def test_pace_and_stall_timeout_follow_speed() -> None:
    assert plan_of(30, speed=1).pace_seconds == pytest.approx(0.25)
    assert plan_of(30, speed=1000).pace_seconds == pytest.approx(0.00025)
    assert plan_of(30, speed=2).pace_seconds == pytest.approx(0.125)
    assert plan_of(30, speed=1).stall_timeout == 60.0
    assert plan_of(30, speed=0.001).stall_timeout == pytest.approx(1000.0)


def test_script_is_deterministic_and_names_the_topic() -> None:
    plan = plan_of(30, topic="How octopuses taste")
    scenes = write_scenes(plan)
    assert scenes == write_scenes(plan_of(30, topic="How octopuses taste"))
    assert scenes[0].title == "Welcome"
    assert scenes[-1].title == "Wrapping up"
    assert "30 seconds" in scenes[-1].text
    assert all("how octopuses taste" in scene.text for scene in scenes)
    assert len({scene.title for scene in scenes}) == len(scenes)
    text = script_text(plan, scenes)
    assert text.startswith("# How octopuses taste\n")
    assert "Scene 5 of 5 · Wrapping up (0:24–0:30)" in text
    other = [scene.title for scene in write_scenes(plan_of(30, topic="Volcanoes"))]
    assert len({tuple(other), tuple(scene.title for scene in scenes)}) == 2


def test_one_scene_is_the_opening_and_long_topics_are_shortened() -> None:
    (only,) = write_scenes(plan_of(5))
    assert only.title == "Welcome"
    long = "The history of the Roman roads and the people who built them across Europe"
    assert spoken_topic(long) == "the history of the Roman roads"
    assert spoken_topic("  Paris   in  spring ") == "Paris in spring"
    assert "10 minutes" in write_scenes(plan_of(600))[-1].text


def test_speaking_rate_fits_the_scene() -> None:
    assert words_per_minute("one two three", 6.0) == 140  # short text: the slowest rate
    assert words_per_minute(" ".join(["word"] * 17), 6.0) == 200
    assert words_per_minute(" ".join(["word"] * 200), 5.0) == 300


# -- audio ---------------------------------------------------------------------------------


def test_fit_pads_with_silence_and_cuts_with_a_fade() -> None:
    loud = array("h", [10_000] * 1000)
    padded = fit(loud, 1000, 1.5)
    assert len(padded) == 1500 and padded[999] == 10_000 and set(padded[1000:]) == {0}
    cut = fit(loud, 1000, 0.5)
    assert len(cut) == 500 and cut[0] == 10_000
    assert list(cut[-30:]) == sorted(cut[-30:], reverse=True) and cut[-1] < 1000


def test_wav_round_trip_resample_and_chime() -> None:
    samples = array("h", range(-500, 500))
    rate, back = read_wav(wav_bytes(samples, 8000))
    assert (rate, back) == (8000, samples)
    assert len(resample(samples, 8000, 16000)) == 2000
    assert resample(samples, 8000, 8000) is samples
    tone = chime(22050, 2.0, 3)
    assert len(tone) == 44100 and max(tone) > 1000 and set(tone[-22050:]) == {0}
    with pytest.raises(ValueError):
        read_wav(b"RIFF not really")


# -- slides --------------------------------------------------------------------------------


def test_slide_is_1280_by_720_with_a_jpeg_thumbnail() -> None:
    fonts = load_fonts()
    image = render_slide(fonts, "Tides " * 40, "The big picture", "Words " * 80, 2, 5)
    assert image.size == (1280, 720)
    png = Image.open(io.BytesIO(png_bytes(image)))
    assert (png.format, png.size) == ("PNG", (1280, 720))
    thumb = Image.open(io.BytesIO(thumbnail_bytes(image)))
    assert (thumb.format, thumb.size) == ("JPEG", (640, 360))
    # the text is drawn: the slide has many colours, not just a gradient
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50


def test_wrap_keeps_lines_inside_the_width() -> None:
    font = load_fonts().body
    lines = wrap("a " * 50 + "x" * 200, font, 400)
    assert all(font.getlength(line) <= 400 for line in lines)
    assert "".join(lines).replace(" ", "").endswith("x" * 200)
    clipped = clip(lines, 2, font, 400)
    assert len(clipped) == 2 and clipped[-1].endswith("…")
