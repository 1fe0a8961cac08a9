"""The SQLite store's two connections, used from trio's worker threads one call at a time."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import trio

from ._config import FsyncMode
from ._storage import StorageUnavailable

T = TypeVar("T")


class SqliteConnections:
    """One writer and one reader connection to ``path`` (WAL), each behind a lock.

    Work runs in a worker thread (``trio.to_thread.run_sync``), so no blocking
    call runs on the event loop. A write is one ``BEGIN IMMEDIATE`` transaction;
    an ``sqlite3.Error`` is raised as :class:`StorageUnavailable` and the
    connection is dropped (a fresh one is made for the next call), calling
    ``on_writer_dropped`` for the writer so that what was cached about the
    database is forgotten.
    """

    def __init__(
        self, path: Path, fsync: FsyncMode, *, on_writer_dropped: Callable[[], None]
    ) -> None:
        self.path = path
        self.fsync = fsync
        self._on_writer_dropped = on_writer_dropped
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_lock = trio.Lock()
        self._read_lock = trio.Lock()

    def connect(self) -> sqlite3.Connection:
        """A new connection to the database, in WAL mode with the configured ``synchronous``."""
        connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=5.0
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={'FULL' if self.fsync == 'always' else 'NORMAL'}")
        return connection

    def open_writer(self) -> sqlite3.Connection:
        """Connect the writer now (in the calling thread) and return it."""
        self._writer = self.connect()
        return self._writer

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the writer in one transaction, in a worker thread."""
        async with self._write_lock:
            return await trio.to_thread.run_sync(self._run_write, work)

    def _run_write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._writer is None:
                self._writer = self.connect()
            connection = self._writer
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            return result
        except sqlite3.Error as exc:
            self._drop_writer()
            raise StorageUnavailable(f"cannot write {self.path}: {exc}") from exc

    def _drop_writer(self) -> None:
        # After a failed write (a full disk, a read-only remount, an I/O error)
        # start over with a fresh connection: an old one may be in any state.
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(sqlite3.Error):
                writer.close()
        self._on_writer_dropped()

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the reader, in a worker thread."""
        async with self._read_lock:
            return await trio.to_thread.run_sync(self._run_read, work)

    def _run_read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._reader is None:
                self._reader = self.connect()
            return work(self._reader)
        except sqlite3.Error as exc:
            reader, self._reader = self._reader, None
            if reader is not None:
                reader.close()
            raise StorageUnavailable(f"cannot read {self.path}: {exc}") from exc

    async def aclose(self) -> None:
        """Close both connections (waiting for a call in progress). Idempotent."""
        async with self._write_lock, self._read_lock:
            for connection in (self._writer, self._reader):
                if connection is not None:
                    await trio.to_thread.run_sync(connection.close)
            self._writer = self._reader = None
