"""``aura-actors bench``: the benchmark harness of the source checkout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ._exit import EXIT_USAGE


def configure(bench: argparse.ArgumentParser) -> None:
    """Everything after ``bench`` belongs to the harness (``main`` hands it over unparsed)."""
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(handler=lambda args: run_bench(args.bench_args))


def run_bench(bench_args: Sequence[str]) -> int:
    """Run ``python -m bench`` with ``bench_args`` in the source checkout."""
    import subprocess

    checkout = Path(__file__).resolve().parent.parent.parent
    if not (checkout / "bench" / "__main__.py").is_file():
        print(
            "aura-actors: the benchmark harness lives in the source checkout's bench/ folder; "
            "install aura-actors from a checkout (pip install -e '.[bench]')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    command = [sys.executable, "-m", "bench", *bench_args]
    return subprocess.run(command, cwd=checkout, check=False).returncode
