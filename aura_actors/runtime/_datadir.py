"""One process per data dir (or, in a cluster, per node name): an exclusive lock held
for the process's life."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

#: The lock file, in the data dir.
LOCK_FILE = "aura.lock"


class DataDirLocked(Exception):
    """Another process owns the data dir (in a cluster: uses this node name in it)."""

    def __init__(self, data_dir: Path, holder_pid: int | None, node: str | None = None) -> None:
        holder = f"process {holder_pid}" if holder_pid is not None else "another process"
        if node is None:
            message = (
                f"the data dir {data_dir} is in use by {holder}; stop it, or give this "
                "server another --data-dir"
            )
        else:
            message = (
                f"the node name {node} is in use in the data dir {data_dir} by {holder}; "
                "stop it, or give this node another --node-name"
            )
        super().__init__(message)
        self.data_dir = data_dir
        self.holder_pid = holder_pid


class DataDirLock:
    """``fcntl.flock`` on ``<data dir>/aura.lock``, taken before anything in the dir is touched.

    The lock file holds the owner's pid, so a second process can name it. The
    kernel drops the lock when the process dies, however it dies: a killed
    server never leaves a stale lock behind. A cluster's nodes share the data
    dir (its job files): each takes ``aura-node-<node>.lock`` instead, so two
    processes with one node name are refused, and nodes of different names not.
    """

    def __init__(self, data_dir: Path, node: str | None = None) -> None:
        self.data_dir = data_dir
        self.node = node
        self.file = LOCK_FILE if node is None else f"aura-node-{node}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DataDirLocked` at once. Blocking, but brief."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / self.file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DataDirLocked(self.data_dir, holder, self.node) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text.isascii() and text.isdigit() else None
    except (OSError, UnicodeDecodeError):
        return None
