"""What ``follow`` shows: the live rich display (on a recording console), plain lines, JSON."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from aura_actors.cli.display import (
    FollowState,
    JsonLinesView,
    LiveView,
    PlainView,
    format_eta,
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
    assert "script.txt" in shown and "238 bytes" in shown and "480.0 kB" in shown
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
