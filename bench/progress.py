"""Progress lines printed while the harness runs (it takes minutes)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

#: The repository root: the working directory of the harness's child processes,
#: so ``python -m bench...`` finds the (uninstalled) ``bench`` package from anywhere.
ROOT = Path(__file__).resolve().parent.parent

_START = time.monotonic()


def say(message: str) -> None:
    """Print one progress line, prefixed with the seconds since the harness started."""
    elapsed = time.monotonic() - _START
    print(f"[{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


def elapsed() -> float:
    """Seconds since the harness (this module) started."""
    return time.monotonic() - _START
