"""How long a command takes to start: ``aura-actors --version`` and ``aura-actors jobs``.

Each command runs as a fresh process ``repeats`` times; the median wall time
is reported beside a bare ``python -c pass`` measured in the same run (the
interpreter's own start, which no import-time care can remove). ``jobs``
talks to a server this scenario starts on a free port, with nothing in it.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.progress import say
from bench.results import Measure, RunResults

#: The command line itself, as a console script would run it.
_CLI = [sys.executable, "-m", "aura_actors"]


def _median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    server = subprocess.Popen(
        [*_CLI, "serve", "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert server.stdout is not None
    for line in server.stdout:
        text = line.decode()
        if text.startswith("aura-actors listening on "):
            return server, text.split()[-1]
    raise RuntimeError("the server exited before listening")


def run(results: RunResults, repeats: int) -> None:
    """Median start times of the two commands, beside the bare interpreter's."""
    bare = _median_seconds([sys.executable, "-c", "pass"], repeats)
    version = _median_seconds([*_CLI, "--version"], repeats)
    with tempfile.TemporaryDirectory(prefix="aura-bench-startup-") as folder:
        server, url = _start_server(Path(folder))
        try:
            jobs = _median_seconds([*_CLI, "jobs", "--url", url], repeats)
        finally:
            server.terminate()
            server.wait(timeout=10)
    say(
        f"startup: --version {version * 1000:.0f} ms, jobs {jobs * 1000:.0f} ms "
        f"(python -c pass {bare * 1000:.0f} ms), median of {repeats}"
    )
    for name, seconds, target in (
        ("aura-actors --version", version, "≤ 300 ms"),
        ("aura-actors jobs", jobs, ""),
    ):
        results.add(
            Measure(
                "startup",
                name,
                "ms",
                seconds * 1000,
                bare * 1000,
                "python -c pass",
                target=target,
            )
        )
    results.scenarios["startup"] = {
        "repeats": repeats,
        "bare": bare,
        "version": version,
        "jobs": jobs,
    }
