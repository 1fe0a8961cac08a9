"""Progress lines printed while the harness runs (it takes minutes)."""

from __future__ import annotations

import sys
import time

_START = time.monotonic()


def say(message: str) -> None:
    """Print one progress line, prefixed with the seconds since the harness started."""
    elapsed = time.monotonic() - _START
    print(f"[{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)


def elapsed() -> float:
    """Seconds since the harness (this module) started."""
    return time.monotonic() - _START
