"""Memory and CPU of a process, read from ``/proc`` (Linux only)."""

from __future__ import annotations

import os
from dataclasses import dataclass

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def self_rss_bytes() -> int:
    """Resident set size of this process, from ``/proc/self/statm``."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading of a process: RSS in bytes and CPU seconds used so far."""

    rss_bytes: int
    cpu_seconds: float


def sample(pid: int) -> ProcSample:
    """Read RSS (``/proc/<pid>/statm``) and user+system CPU (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/statm") as statm:
        rss = int(statm.read().split()[1]) * _PAGE_SIZE
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    # The command name (field 2) may hold spaces; fields after its ")" are fixed.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return ProcSample(rss, (utime + stime) / _CLOCK_TICKS)


def cpu_percent(before: ProcSample, after: ProcSample, wall_seconds: float) -> float:
    """CPU use between two samples, in percent of one core."""
    if wall_seconds <= 0:
        return 0.0
    return 100.0 * (after.cpu_seconds - before.cpu_seconds) / wall_seconds


def open_fds(pid: int) -> int:
    """How many file descriptors process ``pid`` holds open (``/proc/<pid>/fd``)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def listen_overflows() -> int:
    """Machine-wide count of connections dropped because a listen queue was full.

    ``TcpExt: ListenOverflows`` of ``/proc/net/netstat`` (this network namespace);
    0 where the file is missing. A dropped handshake is retried by the client
    after a retransmission timeout, so a delta over a window explains slow connects.
    """
    try:
        with open("/proc/net/netstat") as netstat:
            lines = netstat.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(fields.get("ListenOverflows", 0))
    return 0
