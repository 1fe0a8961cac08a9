"""What ``follow`` shows: the live rich display (on a recording console), plain lines, JSON."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from support.terminal import screen_of

from aura_actors.cli.display import (
    FollowState,
    JsonLinesView,
    LiveView,
    PlainView,
    format_eta,
    format_size,
    job_title,
)
from aura_actors.client import Event, parse_event

JOB = "4f1c0ffee"
_counter = iter(range(1, 10_000))


def event(kind: str, **data: Any) -> Event:
    return parse_event(f"1000-{next(_counter)}", kind, {"jobId": JOB, **data})


def status(new: str, old: str | None) -> Event:
    return event("job-status", status=new, previousStatus=old, stage=None, progressPct=0)


def step(name: str, index: int, state: str) -> Event:
    return event("step-status", step=name, stepIndex=index, totalSteps=5, state=state)


def progress(name: str, overall: float, stage: float, item: int | None, items: int | None) -> Event:
    return event(
        "step-progress",
        step=name,
        progressPct=overall,
        stepProgressPct=stage,
        message=f"drawing image {item} of {items}",
        etaSeconds=75.4,
        currentItem=item,
        totalItems=items,
    )


ARTIFACTS = [
    {
        "name": "script.txt",
        "path": "artifacts/x/script.txt",
        "sizeBytes": 238,
        "mimeType": "text/plain",
    },
    {
        "name": "voice.wav",
        "path": "artifacts/x/voice.wav",
        "sizeBytes": 480000,
        "mimeType": "audio/wav",
    },
]

VIDEO_ARTIFACTS = [
    {
        "name": "video.mp4",
        "path": "artifacts/x/video.mp4",
        "sizeBytes": 1_234_567,
        "mimeType": "video/mp4",
    },
    {
        "name": "thumbnail.jpg",
        "path": "artifacts/x/thumbnail.jpg",
        "sizeBytes": 48_213,
        "mimeType": "image/jpeg",
    },
    ARTIFACTS[1],
    ARTIFACTS[0],
]


def recording_console() -> Console:
    return Console(
        record=True, width=100, force_terminal=True, color_system=None, file=io.StringIO()
    )


def test_format_eta() -> None:
    assert [format_eta(s) for s in (None, 0, 9.4, 75.4, 3723)] == [
        "--",
        "0:00",
        "0:09",
        "1:15",
        "1:02:03",
    ]


def test_live_view_shows_stage_percentages_item_eta_and_warnings() -> None:
    console = recording_console()
    view = LiveView(console, artifact_url=lambda a: f"http://h/api/jobs/{JOB}/artifacts/{a.name}")
    state = FollowState(JOB, pipeline="video")
    view.start(state)
    for item in (
        status("Queued", None),
        status("Running", "Queued"),
        step("Visuals", 2, "Started"),
        progress("Visuals", 45.0, 33.3, 5, 15),
        event("warning", step="Visuals", message="image 5 looks blurry"),
    ):
        view.event(item)
    frame = Console(width=100, color_system=None, file=io.StringIO(), record=True)
    frame.print(view.render())
    live = frame.export_text()
    assert f"Job {JOB}  video  Running" in live
    assert "Overall" in live and "45.0%" in live and "ETA 1:15" in live
    assert "Visuals" in live and "33.3%" in live
    assert "item 5/15" in live and "stage 3/5" in live
    assert "drawing image 5 of 15" in live

    done = event("job-status", status="Done", previousStatus="Running", stage=None, progressPct=100)
    completed = event("job-completed", artifacts=ARTIFACTS, durationSeconds=12.34)
    view.event(done)
    view.event(completed)
    view.finish(completed)
    shown = console.export_text()
    assert "⚠ warning [Visuals]: image 5 looks blurry" in shown
    assert "Done in 12.3 s" in shown
    assert "script.txt" in shown and "238 B" in shown and "480.0 kB" in shown
    assert f"http://h/api/jobs/{JOB}/artifacts/voice.wav" in shown


def test_live_view_summary_of_a_failure_shows_remediation() -> None:
    console = recording_console()
    view = LiveView(console)
    view.start(FollowState(JOB))
    failed = event(
        "job-failed",
        step="Voice",
        errorMessage="the voice engine crashed",
        errors=[{"code": "tts_crash", "message": "engine exited 3", "remediation": "retry later"}],
        logs=["Voice: starting", "Voice: crashed"],
    )
    view.event(failed)
    view.finish(failed)
    shown = console.export_text()
    assert "Failed in stage Voice: the voice engine crashed" in shown
    assert "error tts_crash: engine exited 3" in shown
    assert "remediation: retry later" in shown
    assert "Voice: crashed" in shown


def test_live_view_holds_warnings_while_paused() -> None:
    console = recording_console()
    view = LiveView(console)
    view.start(FollowState(JOB))
    with view.paused():
        view.event(event("warning", step=None, message="held back"))
        assert "held back" not in console.export_text(clear=False)
    assert "warning: held back" in console.export_text()
    view.finish(None)


def test_plain_view_prints_a_line_per_change_not_per_tick() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = PlainView(out, err)
    view.start(FollowState(JOB, pipeline="synthetic"))
    view.event(step("stage-1", 0, "Started"))
    for tick in range(1, 41):  # 40 ticks of 0.25 % overall each: 10 whole percents
        view.event(progress("stage-1", tick * 0.25, tick * 2.5, tick, 40))
    view.event(event("job-cancelled", step="stage-1", message="canceled by user"))
    view.finish(event("job-cancelled", step="stage-1", message="canceled by user"))
    lines = out.getvalue().splitlines()
    assert lines[0] == f"following job {JOB} (synthetic)"
    assert lines[1] == "stage 1/5 stage-1: started"
    ticks = [line for line in lines if "% overall" in line]
    assert len(ticks) == 11  # one per whole percent (0 to 9), and the stage's 100 %
    assert ticks[-1].startswith("stage-1:  10.0% overall, 100.0% of stage, item 40/40, ETA 1:15")
    assert lines[-1] == "Canceled during stage stage-1: canceled by user"
    assert err.getvalue() == ""


def test_json_view_prints_one_object_per_line_and_notes_on_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = JsonLinesView(out, err)
    first = status("Queued", None)
    view.event(first)
    view.note("reconnecting")
    assert json.loads(out.getvalue()) == {
        "id": first.id,
        "event": "job-status",
        "data": {
            "jobId": JOB,
            "status": "Queued",
            "previousStatus": None,
            "stage": None,
            "progressPct": 0,
        },
    }
    assert err.getvalue() == "reconnecting\n"


# -- what a terminal shows ----------------------------------------------------------------


def terminal_console(file: io.StringIO) -> Console:
    return Console(width=100, force_terminal=True, color_system=None, file=file)


def test_after_a_question_the_live_display_shows_once() -> None:
    """Ctrl-C, the question, ``y``: the display goes on below the answer, not twice."""
    file = io.StringIO()
    view = LiveView(terminal_console(file), refresh_per_second=1)
    view.start(FollowState(JOB, pipeline="synthetic"))
    view.event(status("Running", "Queued"))
    view.event(step("stage-1", 0, "Started"))
    view.event(progress("stage-1", 10.0, 50.0, 1, 2))
    with view.paused():
        file.write(f"\nCancel job {JOB}? [y/N] y\n")  # what the question leaves on screen
    view.note(f"cancelling job {JOB} ...")
    cancelled = event("job-cancelled", step="stage-1", message="canceled by user")
    view.event(cancelled)
    view.finish(cancelled)
    screen = screen_of(file.getvalue())
    assert sum(f"Job {JOB}" in line for line in screen) == 1, "\n".join(screen)
    assert sum("Overall" in line for line in screen) == 1, "\n".join(screen)
    assert sum("Cancel job" in line for line in screen) == 1, "\n".join(screen)
    question = next(i for i, line in enumerate(screen) if "Cancel job" in line)
    header = next(i for i, line in enumerate(screen) if f"Job {JOB}" in line)
    assert question < header, "\n".join(screen)
    assert "Canceled during stage stage-1: canceled by user" in screen
    # A canceled job has no ETA to show.
    assert not any("ETA" in line for line in screen), "\n".join(screen)


def test_when_the_answer_is_no_the_last_frame_stays_once() -> None:
    file = io.StringIO()
    view = LiveView(terminal_console(file), refresh_per_second=1)
    view.start(FollowState(JOB, pipeline="synthetic"))
    view.event(step("stage-1", 0, "Started"))
    view.event(progress("stage-1", 10.0, 50.0, 1, 2))
    with view.paused():
        file.write(f"\nCancel job {JOB}? [y/N] n\n")
        view.finish(None)
    view.finish(None)
    screen = screen_of(file.getvalue())
    assert sum(f"Job {JOB}" in line for line in screen) == 1, "\n".join(screen)
    assert sum("ETA 1:15" in line for line in screen) == 1, "\n".join(screen)


def test_artifact_urls_are_never_cut_mid_word() -> None:
    console = Console(record=True, width=70, color_system=None, file=io.StringIO())
    long_base = "http://render-farm.example.internal:8000/api/jobs/" + "f" * 32 + "/artifacts/"
    view = LiveView(console, artifact_url=lambda a: long_base + a.name)
    view.start(FollowState(JOB))
    completed = event("job-completed", artifacts=VIDEO_ARTIFACTS, durationSeconds=3.0)
    view.event(completed)
    view.finish(completed)
    lines = console.export_text().splitlines()
    for artifact in VIDEO_ARTIFACTS:
        url = f"{long_base}{artifact['name']}"
        assert any(url in line for line in lines), "\n".join(lines)
    assert any("video.mp4" in line and "1.2 MB" in line for line in lines), "\n".join(lines)


def test_sizes_use_decimal_units_everywhere() -> None:
    assert [format_size(n) for n in (0, 238, 999, 1000, 1049, 1050, 480_000)] == [
        "0 B",
        "238 B",
        "999 B",
        "1.0 kB",
        "1.0 kB",
        "1.1 kB",
        "480.0 kB",
    ]
    assert [format_size(n) for n in (999_949, 999_950, 1_234_567, 5 * 10**9)] == [
        "999.9 kB",
        "1.0 MB",
        "1.2 MB",
        "5.0 GB",
    ]
    out = io.StringIO()
    view = PlainView(out, io.StringIO(), artifact_url=lambda a: f"http://h/{a.name}")
    view.start(FollowState(JOB))
    view.finish(event("job-completed", artifacts=VIDEO_ARTIFACTS, durationSeconds=3.0))
    assert "artifact video.mp4 (1.2 MB, video/mp4): http://h/video.mp4" in out.getvalue()
    assert "artifact script.txt (238 B, text/plain): http://h/script.txt" in out.getvalue()


def test_titles_tell_jobs_apart() -> None:
    assert job_title("video", {"topic": "  Tides\tof the\nNorth Sea ", "speed": 2}) == (
        "Tides of the North Sea"
    )
    assert job_title("synthetic", {"stages": 2, "ticks": 50}) == "synthetic stages=2 ticks=50"
    assert job_title("synthetic", {"failAt": {"stage": 1, "tick": 2}}) == (
        'synthetic failAt={"stage":1,"tick":2}'
    )
    long = job_title("video", {"topic": "x" * 100})
    assert len(long) == 60 and long.endswith("…")
