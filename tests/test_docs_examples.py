"""The guide's examples run as written, against a real server, and the guide shows them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio
from support.servers import run_server

from aura_actors.web import ServerSettings

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples"

#: Each example, and a line its output must contain.
EXPECTED_OUTPUT = {
    "watch_progress.py": "done: video.mp4, thumbnail.jpg, voice.wav, script.txt",
    "progress_with_cancel.py": "final status: Canceled",
    "all_event_types.py": (
        "warning stage-1: synthetic warning at stage-1, tick 3 (warnAt stage 0, tick 2)"
    ),
    "raw_sse_httpx.py": "job-completed",
    "errors_and_recovery.py": "ended with job-completed",
    "custom_pipeline.py": "job-completed",
}


def test_every_example_is_in_the_guide() -> None:
    guide = (DOCS / "guide.md").read_text(encoding="utf-8")
    assert set(EXPECTED_OUTPUT) == {path.name for path in EXAMPLES.glob("*.py")}
    for name in EXPECTED_OUTPUT:
        assert (EXAMPLES / name).read_text(encoding="utf-8").strip() in guide, name


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
async def test_example_runs(name: str, tmp_path: Path) -> None:
    async with run_server(ServerSettings(), data_dir=tmp_path / "data") as server:
        env = {**os.environ, "AURA_URL": server.url}
        with trio.fail_after(60):
            done = await trio.run_process(
                [sys.executable, str(EXAMPLES / name)],
                cwd=tmp_path,
                env=env,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    output = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert EXPECTED_OUTPUT[name] in output, output
    if name == "errors_and_recovery.py":
        assert "invalid params.topic" in output and "not found:" in output
