"""Smoke test of the ``abuse`` benchmark scenario: it runs and produces its measures.

Runs ``python -m bench --smoke --only abuse`` (a few seconds) in a child process
with a time limit and checks the results file's structure: a row per
condition and figure, the probes' samples, the attackers' counters, the
server back to its quiet descriptor count after each abuse, and the docs
section. It asserts no timing and no ratio.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

HARNESS_TIMEOUT = 120
ABUSES = ("slow-readers", "slowloris", "ws-big-frames", "replay-storm", "head-storm")


@pytest.fixture(scope="module")
def abuse_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results_dir = tmp_path_factory.mktemp("bench-abuse")
    command = [sys.executable, "-m", "bench", "--smoke", "--only", "abuse", "--no-plots"]
    command += ["--results-dir", str(results_dir)]
    try:
        done = subprocess.run(
            command, cwd=_ROOT, capture_output=True, text=True, timeout=HARNESS_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        progress = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"the harness took over {HARNESS_TIMEOUT} s; its progress:\n{progress}")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads((results_dir / "latest.json").read_text())
    return data


def test_every_condition_has_its_rows(abuse_results: dict[str, Any]) -> None:
    rows = {(m["scenario"], m["name"]): m for m in abuse_results["measures"]}
    for condition in ("quiet", *ABUSES, "quiet-after"):
        for name in ("health p50", "health p99", "first event median"):
            row = rows[(f"abuse {condition}", name)]
            assert row["unit"] == "ms" and row["reference_label"] == "quiet"
        assert (f"abuse {condition}", "server fds after the abuse") in rows
    for condition in ABUSES:
        assert rows[(f"abuse {condition}", "health p99")]["target"] == "<= 3x quiet"


def test_each_condition_was_probed_and_settled(abuse_results: dict[str, Any]) -> None:
    abuse = abuse_results["scenarios"]["abuse"]
    samples = abuse["plan"]["first_event_samples"]
    assert list(abuse["conditions"]) == ["quiet", *ABUSES, "quiet-after"]
    for name, condition in abuse["conditions"].items():
        probe = condition["probe"]
        assert probe["health_ms"]["count"] >= 1, name
        assert probe["first_event_ms"]["count"] == samples, name
        assert condition["back_to_quiet"] is True, (name, condition)
        assert isinstance(condition["listen_overflows"], int)
        if name in ABUSES:
            assert condition["attacker"], f"{name}: the attacker reported nothing"
            assert isinstance(condition["goal_met"], bool)
        else:
            assert condition["attacker"] == {} and condition["goal_met"] is None


def test_docs_have_the_abuse_section(abuse_results: dict[str, Any], tmp_path: Path) -> None:
    from bench.docs import merge, render

    text = render(merge([abuse_results]), "benchmarks")
    assert "## Abuse" in text
    for condition in ABUSES:
        assert f"| {condition} |" in text
    other = {"meta": {"timestamp": "x", "scenarios": ["capacity"]}, "measures": []}
    merged = merge([other | {"scenarios": {"capacity": None}}, abuse_results])
    assert merged["meta"]["scenarios"] == ["capacity", "abuse"]
    assert "## Abuse" in render(merged, "benchmarks")
