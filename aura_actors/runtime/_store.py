"""The job store: every job's latest snapshot in ``<data_dir>/jobs.jsonl``, kept by an actor.

The file is JSON lines, one record per line::

    {"seq": 7, "owner": "ann", "job": {<the job's snapshot, as Job.snapshot() gives it>}}

A job has a line when it is created (``Queued``) and one at each status change
(``Running``, then its terminal status, which carries the last stage, progress
and message); the last line of a job wins. Progress is not recorded as it
happens: that is what the event stream is for.

Writing never holds up a job. The runtime hands records to :meth:`JobStore.record`,
which is synchronous and never blocks: it puts the record on a bounded trio
memory channel with ``send_nowait``, and while that channel is full it keeps
only the latest record of each job in a dict (a terminal record is a job's
last, so it is never dropped). The store's actor (:meth:`JobStore.run`, a
task of the runtime's system nursery) takes everything waiting at once,
keeps the latest record per job, and appends the batch in a worker thread;
it fsyncs when the batch holds a terminal record, when asked
(:meth:`JobStore.flush`, closing) and otherwise at most once per
``fsync_interval``.

At start, :meth:`JobStore.load` reads the file back (a truncated last line,
left by a crash in the middle of a write, is skipped with a warning), ends the
jobs the previous process never finished (``Queued`` becomes ``Canceled``,
``Running`` becomes ``Failed`` with error code ``interrupted``) and compacts
the file to one line per job, atomically (a temporary file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import trio

from ._events import JsonObject
from ._ids import EventId
from ._status import JobStatus

logger = logging.getLogger("aura_actors.store")

#: The job store's file name, in the runtime's data dir.
JOBS_FILE: Final = "jobs.jsonl"
#: Error code of a job that was running when the server stopped without ending it.
INTERRUPTED: Final = "interrupted"
#: The error message of such a job.
INTERRUPTED_MESSAGE: Final = "the server stopped while the job was running"
#: What to do about it.
INTERRUPTED_REMEDIATION: Final = "submit the job again"
#: The message of a job that was still queued when the server stopped without ending it.
CANCELED_BY_RESTART: Final = "canceled: the server stopped before the job started"

#: Every line the store writes starts so; a truncated last line is recognised by it.
_RECORD_PREFIX = b'{"seq":'


class JobStoreError(Exception):
    """The job store's file cannot be read or written; the message names the file."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"job store {path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class StoredJob:
    """One record of the job store: a job's snapshot, plus what the snapshot does not say.

    ``seq`` orders jobs (a listing is newest first, by ``seq``); ``owner`` is
    the user the job belongs to (``None`` with auth off).
    """

    seq: int
    owner: str | None
    snapshot: JsonObject

    @property
    def job_id(self) -> str:
        """The job's id."""
        return str(self.snapshot["id"])

    @property
    def status(self) -> JobStatus:
        """The job's status in this record."""
        return JobStatus(self.snapshot["status"])

    def to_line(self) -> str:
        """The record as one line of JSON, newline included."""
        document = {"seq": self.seq, "owner": self.owner, "job": self.snapshot}
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)
        return text + "\n"

    @classmethod
    def from_json(cls, document: object) -> StoredJob:
        """The record of one decoded line; :class:`ValueError` unless it is well formed."""
        if not isinstance(document, dict):
            raise ValueError("a record must be a JSON object")
        seq = document.get("seq")
        owner = document.get("owner")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("'seq' must be a non-negative integer")
        if owner is not None and not isinstance(owner, str):
            raise ValueError("'owner' must be a string or null")
        return cls(seq, owner, _checked_snapshot(document.get("job")))


@dataclass(frozen=True, slots=True)
class LoadedJobs:
    """What :meth:`JobStore.load` found."""

    #: Every stored job, all terminal, oldest first, ``seq`` renumbered ``0 .. n-1``.
    jobs: list[StoredJob]
    #: The newest event id any stored snapshot carries (ids must go on after it).
    last_event_id: EventId | None
    #: Jobs the previous process left ``Queued`` or ``Running``, now ended.
    interrupted: int
    #: Lines that could not be read and were skipped (a truncated last line included).
    skipped_lines: int


class JobStore:
    """Keeps every job's latest snapshot in a JSON-lines file, written by its own actor.

    Use: :meth:`load` once at start (blocking; run it in a thread), run
    :meth:`run` in a nursery, :meth:`record` records (synchronous, never
    blocks), then :meth:`close` and :meth:`wait_closed` (with :meth:`abort`
    if that takes too long). The runtime does all of this when
    ``RuntimeConfig.persist_jobs`` is on.
    """

    def __init__(
        self,
        path: Path,
        *,
        buffer: int = 1024,
        fsync_interval: float = 1.0,
        retry_interval: float = 1.0,
    ) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        #: The JSON-lines file.
        self.path = Path(path)
        #: Records the channel to the actor holds before they are coalesced per job.
        self.buffer = buffer
        #: Seconds (trio clock) a written non-terminal record may wait for its fsync.
        self.fsync_interval = fsync_interval
        #: Seconds to wait before writing again after a write failed.
        self.retry_interval = retry_interval
        self._send, self._receive = trio.open_memory_channel[StoredJob | None](buffer)
        # The latest record of each job that did not fit in the channel.
        self._overflow: dict[str, StoredJob] = {}
        # A batch whose write failed: written again, under what came since.
        self._unwritten: dict[str, StoredJob] = {}
        # Tickets: records handed in; covered by a completed write; by an fsync.
        self._recorded = 0
        self._written = 0
        self._synced = 0
        self._sync_wanted = False
        self._last_sync = -math.inf
        # After a failed write the file may end in a partial line: end it first.
        self._needs_newline = False
        self._changed = trio.Event()
        self._closed = False
        self._finished = trio.Event()
        self._scope = trio.CancelScope(shield=True)

    # -- handing records in -----------------------------------------------------------

    def record(self, stored: StoredJob) -> None:
        """Hand a record to the store's actor. Synchronous; never blocks, never a checkpoint.

        While the actor's channel is full, only the latest record of each job
        waits (in a dict); a job's records are never reordered. After
        :meth:`close`, records are dropped with a warning.
        """
        if self._closed:
            logger.warning(
                "job store closed: record dropped",
                extra={"job_id": stored.job_id, "status": stored.snapshot.get("status")},
            )
            return
        self._recorded += 1
        job_id = stored.job_id
        if job_id in self._overflow:  # behind the job's earlier record, which waits there
            self._overflow[job_id] = stored
            return
        try:
            self._send.send_nowait(stored)
        except trio.WouldBlock:
            self._overflow[job_id] = stored

    @property
    def pending_count(self) -> int:
        """Records waiting for the actor (at most ``buffer`` plus one per job)."""
        return (
            self._send.statistics().current_buffer_used + len(self._overflow) + len(self._unwritten)
        )

    async def flush(self) -> None:
        """Wait until every record handed in so far is written and fsynced."""
        target = self._recorded
        while self._synced < target:
            if self._finished.is_set():
                raise JobStoreError(self.path, "the store is closed; some records were not written")
            self._sync_wanted = True
            # Wake the actor if it is idle; if the channel is full (or closing), it has
            # records waiting and will get to them.
            with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
                self._send.send_nowait(None)
            await self._changed.wait()

    def close(self) -> None:
        """Take no more records; the actor writes what waits, fsyncs, and returns."""
        self._closed = True
        self._send.close()

    async def wait_closed(self) -> None:
        """Wait until the actor has returned (after :meth:`close`, once all is written)."""
        await self._finished.wait()

    # -- the actor ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The store's actor: write records in batches, off the event loop, until closed.

        It is shielded from cancellation: it ends when :meth:`close` was
        called and everything handed in is written (with a last fsync), or at
        once when :meth:`abort` is called. (So the job actors' last records,
        made while the runtime is being cancelled, are still written.)
        """
        try:
            with self._scope:
                task_status.started()
                while True:
                    try:
                        first = await self._next_item()
                    except trio.EndOfChannel:
                        break
                    if not await self._write(first, final=False):
                        await trio.sleep(self.retry_interval)
                await self._write(None, final=True)
        finally:
            self._finished.set()
            self._notify()

    def abort(self) -> None:
        """Stop the actor now, abandoning a write in progress (a stuck disk) and what waits."""
        self._scope.cancel()

    async def _next_item(self) -> StoredJob | None:
        """The next record (``None``: a wake-up), or ``None`` when a retry or an fsync is due."""
        if self._unwritten:  # a failed batch: retry it now (or for the last time, if closed)
            if self._closed:
                raise trio.EndOfChannel
            return None
        if self._written > self._synced:
            with trio.move_on_at(self._last_sync + self.fsync_interval):
                return await self._receive.receive()
            return None
        return await self._receive.receive()

    def _take_batch(self, first: StoredJob | None) -> dict[str, StoredJob]:
        """Everything waiting, the latest record per job. Synchronous, so nothing slips in."""
        batch = self._unwritten
        self._unwritten = {}
        item = first
        while True:
            if item is not None:
                batch[item.job_id] = item
            try:
                item = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        batch.update(self._overflow)  # each is newer than the job's records in the channel
        self._overflow = {}
        return batch

    async def _write(self, first: StoredJob | None, *, final: bool) -> bool:
        """Write one batch; ``False`` if the write failed (the batch is kept for a retry)."""
        batch = self._take_batch(first)
        ticket = self._recorded
        dirty = self._written > self._synced
        fsync = (
            final
            or self._sync_wanted
            or any(stored.status.is_terminal for stored in batch.values())
            or trio.current_time() - self._last_sync >= self.fsync_interval
        )
        if not batch and not (fsync and dirty):
            # Nothing new since the last write, and no fsync owed (or not yet due).
            self._sync_wanted = False
            self._written = ticket
            if not dirty:
                self._synced = ticket
            self._notify()
            return True
        self._sync_wanted = False
        records = list(batch.values())
        prefix = "\n" if self._needs_newline else ""
        try:
            await trio.to_thread.run_sync(
                self._write_records, records, prefix, fsync, abandon_on_cancel=True
            )
        except BaseException as exc:
            # Failed, or cancelled (the thread then goes on alone): keep the batch, and
            # end what may be a partial line before writing it again.
            self._unwritten = {**batch, **self._unwritten}
            self._needs_newline = True
            if not isinstance(exc, OSError):
                raise
            if fsync:
                self._sync_wanted = True
            logger.error(
                "job store write failed; records lost" if final else "job store write failed",
                extra={"path": str(self.path), "error": str(exc), "records": len(records)},
            )
            return False
        self._needs_newline = False
        self._written = ticket
        if fsync:
            self._synced = ticket
            self._last_sync = trio.current_time()
        self._notify()
        return True

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _write_records(self, records: list[StoredJob], prefix: str, fsync: bool) -> None:
        # In a worker thread: the records are built once and never changed after.
        lines = [prefix]
        for stored in records:
            try:
                lines.append(stored.to_line())
            except (TypeError, ValueError):  # a snapshot JSON cannot hold (a bug): skip it
                logger.exception("job store: record not written", extra={"job_id": stored.job_id})
        self.append_lines(lines, fsync=fsync)

    def append_lines(self, lines: list[str], *, fsync: bool) -> None:
        """Append ``lines`` to the file, and fsync it if asked.

        Blocking: the actor calls it in a worker thread, one call at a time.
        (A subclass may override it, to store elsewhere or to test a slow disk.)
        """
        data = "".join(lines).encode("utf-8")
        with open(self.path, "ab") as file:
            if data:
                file.write(data)
            if fsync:
                file.flush()
                os.fsync(file.fileno())

    # -- loading ------------------------------------------------------------------------

    def load(self, *, now: datetime | None = None) -> LoadedJobs:
        """Read the file, end the jobs it left unfinished, and compact it. Blocking.

        Returns every stored job, terminal, oldest first. A line that cannot be
        read is skipped with a warning (a truncated last line is what a crash
        in the middle of a write leaves); if any other line was skipped, the
        original file is kept beside the compacted one as
        ``jobs.jsonl.corrupt-<time>``. Raises :class:`JobStoreError` if the
        file cannot be read or written, or if it holds no record at all but
        is not empty (it is not a job store): it is then left untouched.
        """
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JobStoreError(path, f"cannot create its directory: {exc}") from exc
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return LoadedJobs([], None, 0, 0)
        except OSError as exc:
            raise JobStoreError(path, f"cannot read it: {exc}") from exc

        latest: dict[str, StoredJob] = {}
        order: dict[str, int] = {}  # a job's first line, to break ties in seq
        corrupt: list[int] = []
        truncated = False
        lines = data.split(b"\n")
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                stored = StoredJob.from_json(json.loads(raw))
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
                if number == len(lines) and raw.startswith(_RECORD_PREFIX):
                    truncated = True  # no newline after it: the write was cut short
                    logger.warning(
                        "job store: skipped a truncated last line",
                        extra={"path": str(path), "line": number},
                    )
                else:
                    corrupt.append(number)
                    logger.warning(
                        "job store: skipped an unreadable line",
                        extra={"path": str(path), "line": number, "error": str(exc)[:200]},
                    )
                continue
            previous = latest.get(stored.job_id)
            if previous is not None and previous.status.is_terminal:
                continue  # a terminal job never changes again
            latest[stored.job_id] = stored
            order.setdefault(stored.job_id, number)

        if corrupt and not latest:
            raise JobStoreError(
                path,
                f"not one of its {len(corrupt)} lines is a job record (line {corrupt[0]} is "
                "the first); it was left untouched: move it away to start with an empty "
                "store, or point --data-dir elsewhere",
            )

        finished_at = _iso(now if now is not None else datetime.now(UTC))
        jobs: list[StoredJob] = []
        interrupted = 0
        last_event_id: EventId | None = None
        ranked = sorted(latest.values(), key=lambda s: (s.seq, order[s.job_id]))
        for seq, stored in enumerate(ranked):
            snapshot = stored.snapshot
            if not stored.status.is_terminal:
                snapshot = _settled(snapshot, finished_at)
                interrupted += 1
            jobs.append(StoredJob(seq, stored.owner, snapshot))
            event_id = snapshot.get("lastEventId")
            if event_id is not None:
                parsed = EventId.parse(event_id)
                if last_event_id is None or parsed > last_event_id:
                    last_event_id = parsed

        if corrupt:
            backup = path.with_name(
                f"{path.name}.corrupt-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
            )
            try:
                shutil.copy2(path, backup)
            except OSError as exc:
                raise JobStoreError(path, f"cannot keep a copy of it as {backup}: {exc}") from exc
            logger.warning(
                "job store had unreadable lines; the original is kept",
                extra={"path": str(path), "backup": str(backup), "lines": corrupt[:20]},
            )
        self._rewrite(jobs)
        skipped = len(corrupt) + int(truncated)
        if jobs or skipped:
            logger.info(
                "job store loaded",
                extra={
                    "path": str(path),
                    "jobs": len(jobs),
                    "interrupted": interrupted,
                    "skipped_lines": skipped,
                    "bytes_before": len(data),
                },
            )
        return LoadedJobs(jobs, last_event_id, interrupted, skipped)

    def _rewrite(self, jobs: list[StoredJob]) -> None:
        """Replace the file with one line per job: temporary file, fsync, rename, fsync dir."""
        path = self.path
        temporary = path.with_name(path.name + ".tmp")
        try:
            with open(temporary, "wb") as file:
                file.write("".join(stored.to_line() for stored in jobs).encode("utf-8"))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise JobStoreError(path, f"cannot rewrite it: {exc}") from exc


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where the platform allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse
        pass
    finally:
        os.close(fd)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _settled(snapshot: JsonObject, finished_at: str) -> JsonObject:
    """The terminal snapshot of a job the previous process left ``Queued`` or ``Running``."""
    if snapshot["status"] == JobStatus.QUEUED.value:
        return {
            **snapshot,
            "status": JobStatus.CANCELED.value,
            "message": CANCELED_BY_RESTART,
            "etaSeconds": None,
            "finishedAt": finished_at,
        }
    error = {
        "message": INTERRUPTED_MESSAGE,
        "errors": [
            {
                "code": INTERRUPTED,
                "message": INTERRUPTED_MESSAGE,
                "remediation": INTERRUPTED_REMEDIATION,
            }
        ],
    }
    return {
        **snapshot,
        "status": JobStatus.FAILED.value,
        "message": INTERRUPTED_MESSAGE,
        "etaSeconds": None,
        "finishedAt": finished_at,
        "error": error,
    }


def _checked_snapshot(job: object) -> JsonObject:
    """``job`` if it is a snapshot a :class:`~._job.Job` can be restored from; else ValueError."""
    if not isinstance(job, dict):
        raise ValueError("'job' must be a snapshot object")
    _expect(job, "id", str)
    if not job["id"]:
        raise ValueError("'job.id' must not be empty")
    _expect(job, "pipeline", str)
    _expect(job, "params", dict)
    JobStatus(_expect(job, "status", str))  # ValueError if unknown
    _expect(job, "stage", str, nullable=True)
    _expect(job, "progressPct", (int, float))
    _expect(job, "message", str)
    _expect(job, "etaSeconds", (int, float), nullable=True)
    for key, nullable in (("createdAt", False), ("startedAt", True), ("finishedAt", True)):
        moment = _expect(job, key, str, nullable=nullable)
        if moment is not None:
            datetime.fromisoformat(moment)
    for artifact in _expect(job, "artifacts", list):
        if not isinstance(artifact, dict):
            raise ValueError("'job.artifacts' must hold objects")
        for key, kind in (("name", str), ("path", str), ("sizeBytes", int), ("mimeType", str)):
            _expect(artifact, key, kind)
    _expect(job, "error", dict, nullable=True)
    event_id = _expect(job, "lastEventId", str, nullable=True)
    if event_id is not None:
        EventId.parse(event_id)
    return job


def _expect(
    document: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    *,
    nullable: bool = False,
) -> Any:
    value = document.get(key)
    if value is None and nullable and key in document:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{key!r} is missing or of the wrong type")
    return value
