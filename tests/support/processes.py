"""The process table, read from ``/proc``: which programs a test left running."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process: ids, state (``Z`` for a zombie) and command line."""

    pid: int
    ppid: int
    session: int
    state: str
    cmdline: str

    @property
    def alive(self) -> bool:
        """Still running (not a zombie waiting to be reaped, not dead)."""
        return self.state not in ("Z", "X")


def _read(pid: int) -> ProcessInfo | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:  # it ended while we looked
        return None
    # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses
    fields = stat[stat.rindex(")") + 2 :].split()
    cmdline = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
    return ProcessInfo(pid, int(fields[1]), int(fields[3]), fields[0], cmdline)


def processes() -> list[ProcessInfo]:
    """Every process this user can see."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (info := _read(int(entry.name))) is not None:
            found.append(info)
    return found


def live(predicate: Callable[[ProcessInfo], bool]) -> list[ProcessInfo]:
    """The live processes (zombies excluded) that satisfy ``predicate``."""
    return [info for info in processes() if info.alive and predicate(info)]


def mentioning(text: str) -> Callable[[ProcessInfo], bool]:
    """A predicate: the command line contains ``text``."""
    return lambda info: text in info.cmdline and info.pid != os.getpid()


def in_session(session: int) -> Callable[[ProcessInfo], bool]:
    """A predicate: the process belongs to session ``session``."""
    return lambda info: info.session == session


#: How often the waits below look again. They poll because nothing signals these
#: changes to the test: a program of another parent exiting, a file another program writes.
POLL_SECONDS = 0.005


async def wait_until_none(predicate: Callable[[ProcessInfo], bool], seconds: float = 5.0) -> None:
    """Return once no live process satisfies ``predicate``; fail after ``seconds``.

    A SIGKILLed process is gone within milliseconds; one that was not killed
    (a ``sleep 300``) stays, and the test fails naming it.
    """
    with trio.move_on_after(seconds):
        while live(predicate):  # noqa: ASYNC110 - polling /proc, see POLL_SECONDS
            await trio.sleep(POLL_SECONDS)
    left = live(predicate)
    assert not left, f"still running: {left}"


def _line(path: Path) -> str | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return text.strip() if text.endswith("\n") else None


async def wait_for_line(path: Path, seconds: float = 30.0) -> str:
    """The line a program writes to ``path`` (once its newline is there); fail after ``seconds``."""
    with trio.fail_after(seconds):
        while (line := _line(path)) is None:  # noqa: ASYNC110 - see POLL_SECONDS
            await trio.sleep(POLL_SECONDS)
    return line
