"""A job's state (its snapshot) and the job actor that runs its stages."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from ._broadcaster import Broadcaster
from ._events import EventType, JsonObject
from ._ids import EventId
from ._messages import Message, Progress, StageCompleted, StageFailed, StageStarted, Warning_
from ._progress import EtaEstimator, ProgressTracker
from ._stage import Artifact, Stage, StageContext, StageError, _StallWatch
from ._status import JobStatus, check_transition

logger = logging.getLogger("aura_actors.jobs")

#: How many log lines a job keeps for its ``job-failed`` event.
LOG_LINES_KEPT = 50
#: The cancel message when a user cancels.
CANCELED_BY_USER = "canceled by user"
#: The cancel message when the runtime shuts down.
CANCELED_BY_SHUTDOWN = "canceled: the server is shutting down"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _parse_iso(text: str) -> datetime:
    """The inverse of :func:`_iso` (a moment without a zone is taken as UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_optional_iso(text: str | None) -> datetime | None:
    return None if text is None else _parse_iso(text)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Job:
    """One job: what it runs, where it is, and the cancel scope that is its cancellation.

    A job the runtime runs is made by :meth:`Runtime.submit <._runtime.Runtime.submit>`;
    a finished job of an earlier process comes back from the job store through
    :meth:`restore`.
    """

    __slots__ = (
        "_broadcaster",
        "_started_clock",
        "artifacts",
        "cancel_message",
        "cancel_scope",
        "created_at",
        "error",
        "eta_seconds",
        "finished_at",
        "id",
        "last_event_id",
        "message",
        "owner",
        "params",
        "pipeline",
        "progress_pct",
        "seq",
        "stage",
        "stages",
        "started_at",
        "status",
    )

    def __init__(
        self,
        *,
        job_id: str,
        seq: int,
        pipeline: str,
        params: dict[str, Any],
        stages: Sequence[Stage],
        owner: str | None,
        broadcaster: Broadcaster,
    ) -> None:
        self.id = job_id
        self.seq = seq
        self.pipeline = pipeline
        self.params = params
        self.stages = tuple(stages)
        self.owner = owner
        self.status = JobStatus.QUEUED
        self.stage: str | None = None
        self.progress_pct = 0.0
        self.message = ""
        self.eta_seconds: float | None = None
        self.created_at = _utc_now()
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.artifacts: list[Artifact] = []
        self.error: JsonObject | None = None
        self.last_event_id: EventId | None = None
        self.cancel_scope = trio.CancelScope()
        self.cancel_message: str | None = None
        self._started_clock: float | None = None
        self._broadcaster = broadcaster
        broadcaster.register_job(job_id, owner)

    @classmethod
    def restore(
        cls, snapshot: JsonObject, *, seq: int, owner: str | None, broadcaster: Broadcaster
    ) -> Job:
        """A finished job brought back from the job store: read-only, with no actor.

        ``snapshot`` is a terminal :meth:`snapshot` as the store kept it; the
        restored job's :meth:`snapshot` gives it back unchanged. The job has no
        stages and no history (it is not registered with ``broadcaster``), so
        a subscription to it is born ended and empty. Raises
        :class:`ValueError` (or :class:`KeyError`, :class:`TypeError`) unless
        the snapshot is terminal and well formed.
        """
        status = JobStatus(snapshot["status"])
        if not status.is_terminal:
            raise ValueError(f"only a finished job can be restored, not a {status.value} one")
        job = cls.__new__(cls)
        job.id = str(snapshot["id"])
        job.seq = seq
        job.pipeline = str(snapshot["pipeline"])
        job.params = dict(snapshot["params"])
        job.stages = ()
        job.owner = owner
        job.status = status
        job.stage = snapshot["stage"]
        job.progress_pct = snapshot["progressPct"]
        job.message = str(snapshot["message"])
        job.eta_seconds = snapshot["etaSeconds"]
        job.created_at = _parse_iso(snapshot["createdAt"])
        job.started_at = _parse_optional_iso(snapshot["startedAt"])
        job.finished_at = _parse_optional_iso(snapshot["finishedAt"])
        job.artifacts = [
            Artifact(
                name=artifact["name"],
                path=artifact["path"],
                size_bytes=artifact["sizeBytes"],
                mime_type=artifact["mimeType"],
            )
            for artifact in snapshot["artifacts"]
        ]
        job.error = snapshot["error"]
        last_event_id = snapshot["lastEventId"]
        job.last_event_id = None if last_event_id is None else EventId.parse(last_event_id)
        job.cancel_scope = trio.CancelScope()
        job.cancel_message = None
        job._started_clock = None
        job._broadcaster = broadcaster
        return job

    def emit(self, event_type: EventType, data: JsonObject) -> None:
        """Publish one event of this job (``jobId`` is added)."""
        data = {"jobId": self.id, **data}
        event = self._broadcaster.publish(self.id, event_type, data)
        self.last_event_id = event.id

    def transition(self, new_status: JobStatus) -> None:
        """Move to ``new_status`` and emit ``job-status``; raises on an invalid move."""
        check_transition(self.status, new_status)
        previous = self.status
        self.status = new_status
        if new_status is JobStatus.RUNNING:
            self.started_at = _utc_now()
            self._started_clock = trio.current_time()
        elif new_status.is_terminal:
            self.finished_at = _utc_now()
            self.eta_seconds = None
        logger.info(
            "job transition",
            extra={"job_id": self.id, "from": previous.value, "to": new_status.value},
        )
        self.emit(
            EventType.JOB_STATUS,
            {
                "status": new_status.value,
                "previousStatus": previous.value,
                "stage": self.stage,
                "progressPct": self.progress_pct,
            },
        )

    def announce_queued(self) -> None:
        """Emit the job's first event: ``job-status`` Queued with ``previousStatus`` null."""
        self.emit(
            EventType.JOB_STATUS,
            {
                "status": JobStatus.QUEUED.value,
                "previousStatus": None,
                "stage": None,
                "progressPct": 0.0,
            },
        )

    def request_cancel(self, message: str) -> None:
        """Cancel the job's scope; the actor ends it as ``Canceled`` with ``message``."""
        if self.cancel_message is None:
            self.cancel_message = message
        self.cancel_scope.cancel()

    def finish_canceled(self) -> None:
        """End the job as ``Canceled`` (from Queued or Running) and emit ``job-cancelled``."""
        message = self.cancel_message or CANCELED_BY_USER
        self.message = message
        self.transition(JobStatus.CANCELED)
        self.emit(EventType.JOB_CANCELLED, {"step": self.stage, "message": message})

    @property
    def running_seconds(self) -> float:
        """Trio-clock seconds since the job started running (0 if it never did)."""
        if self._started_clock is None:
            return 0.0
        return trio.current_time() - self._started_clock

    def snapshot(self) -> JsonObject:
        """The contract's job snapshot (camelCase JSON)."""
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "params": self.params,
            "status": self.status.value,
            "stage": self.stage,
            "progressPct": self.progress_pct,
            "message": self.message,
            "etaSeconds": self.eta_seconds,
            "createdAt": _iso(self.created_at),
            "startedAt": _iso(self.started_at),
            "finishedAt": _iso(self.finished_at),
            "artifacts": [artifact.to_json() for artifact in self.artifacts],
            "error": self.error,
            "lastEventId": None if self.last_event_id is None else str(self.last_event_id),
        }


class JobActor:
    """Runs one job: its stages as child actors, their reports turned into events.

    The actor's task owns the job's cancel scope and a nursery with one stage
    actor at a time (plus the stage's stall watchdog, if it has one). Stage
    actors send :mod:`messages <._messages>` over a memory channel; the actor
    consumes them in order, so every event of a job is emitted by this one
    task.
    """

    __slots__ = (
        "_completed",
        "_eta",
        "_failure",
        "_logs",
        "_tracker",
        "data_dir",
        "job",
        "mailbox_size",
    )

    def __init__(self, job: Job, *, data_dir: Path, mailbox_size: int = 64) -> None:
        self.job = job
        self.data_dir = data_dir
        self.mailbox_size = mailbox_size
        self._tracker = ProgressTracker([stage.weight for stage in job.stages])
        self._eta = EtaEstimator()
        self._logs: deque[str] | None = None  # made on the first line: most jobs log nothing
        self._failure: StageFailed | None = None
        self._completed = False

    def _log_line(self, line: str) -> None:
        if self._logs is None:
            self._logs = deque(maxlen=LOG_LINES_KEPT)
        self._logs.append(line)

    async def run(self) -> None:
        """Run the job to a terminal status. Never raises but for ``Cancelled``/``BaseException``.

        Expects the job to be ``Running`` already (the runner moved it there
        when admitting it).
        """
        job = self.job
        try:
            with job.cancel_scope:
                await self._run_stages()
        except Exception as exc:  # a bug in the runtime or a pipeline: fail this job only
            logger.exception("job actor crashed", extra={"job_id": job.id})
            self._failure = StageFailed(
                -1, "internal_error", f"internal error: {exc!r}", "report this as a bug"
            )
        finally:
            self._finish()

    def _finish(self) -> None:
        job = self.job
        if job.status is not JobStatus.RUNNING:
            return
        if self._failure is not None:
            self._fail(self._failure)
        elif self._completed:
            self._complete()
        else:
            job.finish_canceled()

    async def _run_stages(self) -> None:
        send, receive = trio.open_memory_channel[Message](self.mailbox_size)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._stage_actors, send)
            async with receive:
                async for message in receive:
                    self._handle(message)
                    if self._failure is not None:
                        nursery.cancel_scope.cancel()
                        return
        self._completed = self._failure is None

    async def _stage_actors(self, mailbox: trio.MemorySendChannel[Message]) -> None:
        async with mailbox:
            for index, stage in enumerate(self.job.stages):
                await mailbox.send(StageStarted(index))
                context = StageContext(
                    job_id=self.job.id,
                    params=self.job.params,
                    stage_name=stage.name,
                    stage_index=index,
                    total_stages=len(self.job.stages),
                    data_dir=self.data_dir,
                    mailbox=mailbox,
                    log_line=self._log_line,
                    artifacts=self.job.artifacts,
                )
                failure = await self._run_stage(stage, context)
                if failure is not None:
                    await mailbox.send(failure)
                    return
                await mailbox.send(StageCompleted(index))

    async def _run_stage(self, stage: Stage, context: StageContext) -> StageFailed | None:
        index = context.stage_index
        try:
            if stage.stall_timeout is None:
                await stage.run(context)
            elif not await self._run_watched(stage, context, stage.stall_timeout):
                return StageFailed(
                    index,
                    "stalled",
                    f"stage {stage.name} reported no progress for {stage.stall_timeout:g} s",
                    "the stage may be stuck on an external resource; check it and retry",
                )
        except StageError as exc:
            context.log(f"{stage.name}: {exc.message}")
            return StageFailed(index, exc.code, exc.message, exc.remediation)
        except Exception as exc:
            context.log(f"{stage.name}: {type(exc).__name__}: {exc}")
            return StageFailed(
                index,
                "stage_error",
                f"stage {stage.name} failed: {type(exc).__name__}: {exc}",
                "check the job's logs and its params, then retry",
            )
        return None

    async def _run_watched(self, stage: Stage, context: StageContext, stall_timeout: float) -> bool:
        """Run a stage under its stall watchdog; ``False`` if it stalled.

        The stage's own exception is caught inside the watchdog's nursery and
        re-raised outside it, so it reaches :meth:`_run_stage` as itself (a
        :class:`StageError` keeps its code and remediation) rather than wrapped
        in the nursery's ``ExceptionGroup``. A stage that returned is never
        reported as stalled, even if its deadline expired in the same instant.
        """
        failure: Exception | None = None
        finished = False
        with trio.CancelScope(deadline=trio.current_time() + stall_timeout) as fail_scope:
            watch = _StallWatch(fail_scope, stall_timeout)
            context._watch = watch
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._stall_warner, watch, context)
                    try:
                        await stage.run(context)
                        finished = True
                    except Exception as exc:
                        failure = exc
                    nursery.cancel_scope.cancel()
            finally:
                context._watch = None
        if failure is not None:
            raise failure
        # Not finished and nothing raised: only the stall deadline can have stopped it.
        return finished

    @staticmethod
    async def _stall_warner(watch: _StallWatch, context: StageContext) -> None:
        while True:
            with trio.CancelScope(deadline=trio.current_time() + watch.half) as warn_scope:
                watch.warn_scope = warn_scope
                await trio.sleep_forever()
            watch.warn_scope = None
            watch.rearm = rearm = trio.Event()
            await context.warn(
                f"stage {context.stage_name} has reported no progress for {watch.half:g} s"
            )
            await rearm.wait()

    # -- turning messages into events --------------------------------------------------

    def _handle(self, message: Message) -> None:
        job = self.job
        if isinstance(message, Progress):
            self._on_progress(message)
        elif isinstance(message, StageStarted):
            stage = job.stages[message.index]
            job.stage = stage.name
            job.message = f"{stage.name} started"
            job.progress_pct = self._tracker.start_stage(message.index)
            self._emit_step_status(message.index, "Started")
        elif isinstance(message, StageCompleted):
            if self._tracker.stage_pct < 100.0:
                self._on_progress(Progress(message.index, 1.0, None, None, None))
            job.progress_pct = self._tracker.complete_stage(message.index)
            self._emit_step_status(message.index, "Completed")
        elif isinstance(message, Warning_):
            job.emit(
                EventType.WARNING,
                {"step": job.stages[message.index].name, "message": message.message},
            )
        else:
            self._failure = message

    def _on_progress(self, report: Progress) -> None:
        job = self.job
        job.progress_pct = self._tracker.report(report.index, report.fraction)
        job.eta_seconds = self._eta.observe(trio.current_time(), job.progress_pct)
        if report.message is not None:
            job.message = report.message
        job.emit(
            EventType.STEP_PROGRESS,
            {
                "step": job.stages[report.index].name,
                "progressPct": job.progress_pct,
                "stepProgressPct": round(self._tracker.stage_pct, 2),
                "message": job.message,
                "etaSeconds": job.eta_seconds,
                "currentItem": report.current_item,
                "totalItems": report.total_items,
            },
        )

    def _emit_step_status(self, index: int, state: str) -> None:
        self.job.emit(
            EventType.STEP_STATUS,
            {
                "step": self.job.stages[index].name,
                "stepIndex": index,
                "totalSteps": len(self.job.stages),
                "state": state,
            },
        )

    def _complete(self) -> None:
        job = self.job
        job.progress_pct = 100.0
        job.message = "done"
        duration = round(job.running_seconds, 3)
        job.transition(JobStatus.DONE)
        job.emit(
            EventType.JOB_COMPLETED,
            {
                "artifacts": [artifact.to_json() for artifact in job.artifacts],
                "durationSeconds": duration,
            },
        )

    def _fail(self, failure: StageFailed) -> None:
        job = self.job
        errors = [
            {"code": failure.code, "message": failure.message, "remediation": failure.remediation}
        ]
        job.error = {"message": failure.message, "errors": errors}
        job.message = failure.message
        job.transition(JobStatus.FAILED)
        job.emit(
            EventType.JOB_FAILED,
            {
                "step": job.stage,
                "errorMessage": failure.message,
                "errors": errors,
                "logs": list(self._logs or ()),
            },
        )
