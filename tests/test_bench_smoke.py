"""Smoke test of the benchmark harness: the in-process scenarios produce numbers.

Runs ``python -m bench --smoke --only <the in-process scenarios>`` (tiny sizes, a few
seconds) in a child process with a time limit, so a hang fails with the
harness's progress lines instead of blocking the suite, and checks the results
file: every measure has a finite value, and the raw curves are there. It never
asserts timings.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

# bench/ is not an installed package: make the repository root importable however
# pytest is started (the lead may add ``pythonpath = ["."]`` to pytest's config instead).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

HARNESS_TIMEOUT = 120


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    results_dir = tmp_path_factory.mktemp("bench-results")
    argv = ["--smoke", "--only", "spawn,fanout,broadcaster,durability,cancel,video,startup"]
    argv += ["--results-dir", str(results_dir)]
    command = [sys.executable, "-m", "bench", *argv, "--no-plots"]
    try:
        done = subprocess.run(
            command, cwd=_ROOT, capture_output=True, text=True, timeout=HARNESS_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        progress = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"the harness took over {HARNESS_TIMEOUT} s; its progress:\n{progress}")
    assert done.returncode == 0, done.stderr
    latest = results_dir / "latest.json"
    assert latest.is_file()
    assert len(list(results_dir.glob("2*.json"))) == 1
    data: dict[str, object] = json.loads(latest.read_text())
    return data


def test_every_measure_has_a_number(smoke_results: dict[str, object]) -> None:
    measures = smoke_results["measures"]
    assert isinstance(measures, list)
    names = {(m["scenario"].split()[0], m["name"]) for m in measures}
    assert ("spawn", "RSS per job") in names
    assert ("spawn", "tracemalloc per job") in names
    assert ("fanout", "delivered events/s") in names
    assert ("broadcaster", "delivered events/s") in names
    assert ("broadcaster", "CPU per event") in names
    assert ("cancel", "cancel p99") in names
    assert ("video", "render time") in names
    assert ("durability", "submissions/s") in names
    assert ("durability", "events/s") in names
    assert ("durability", "RSS growth after N finished jobs") in names
    assert ("startup", "aura-actors --version") in names
    for measure in measures:
        assert math.isfinite(measure["value"]), measure
        assert measure["reference"] is not None and math.isfinite(measure["reference"]), measure
        assert measure["ratio"] is not None and measure["ratio"] > 0, measure


def test_raw_curves_are_saved(smoke_results: dict[str, object]) -> None:
    scenarios = smoke_results["scenarios"]
    assert isinstance(scenarios, dict)
    assert set(scenarios["spawn"]["curve"]) == {"aura", "trio"}
    assert scenarios["fanout"]["curve"]["aura"][0]["delivered_per_second"] > 0
    hop = scenarios["broadcaster"]["curve"]["hop"]
    assert {row["pacing"] for row in hop} == {"burst", "paced"}
    assert all(row["cpu_seconds_per_event"] > 0 for row in hop)
    for kind in ("sleep", "subprocess", "thread"):
        assert scenarios["cancel"]["samples"][kind]["aura_ms"]
    (render,) = scenarios["video"]["renders"]
    assert render["status"] == "Done" and render["videoBytes"] > 0
    assert set(render["stages"]) == {"Script", "Voice", "Visuals", "Composition", "Rendering"}


def test_plots_and_docs_render(smoke_results: dict[str, object], tmp_path: Path) -> None:
    from bench.docs import write_docs

    page = write_docs(smoke_results, tmp_path / "benchmarks.md")
    text = page.read_text()
    assert "## Results" in text and "spawn N=200" in text
    assert (tmp_path / "benchmarks" / "memory_per_job.png").stat().st_size > 0
    assert (tmp_path / "benchmarks" / "fanout.png").stat().st_size > 0
