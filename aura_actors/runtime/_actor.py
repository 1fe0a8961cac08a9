"""The job actor: runs a job's stages as child actors and turns their reports into events."""

from __future__ import annotations

import logging
import math
from functools import partial
from pathlib import Path

import trio

from ..protocol import (
    ArtifactInfo,
    JobCompletedData,
    StepProgressData,
    StepStatusData,
    WarningData,
)
from ._job import Job, utc_iso, utc_now
from ._messages import Message, Progress, StageCompleted, StageFailed, StageStarted, Warning_
from ._progress import EtaEstimator, ProgressTracker
from ._stage import Stage, StageContext, StageError, _StallWatch
from ._status import JobStatus

logger = logging.getLogger("aura_actors.jobs")

#: How many log lines a job keeps (its log, and the tail a ``job-failed`` event carries).
LOG_LINES_KEPT = 200
#: How many of them go with a ``job-failed`` event.
FAILED_EVENT_LOG_LINES = 50


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
        "_tracker",
        "data_dir",
        "job",
        "mailbox_size",
        "max_seconds",
    )

    def __init__(
        self,
        job: Job,
        *,
        data_dir: Path,
        mailbox_size: int = 64,
        max_seconds: float | None = None,
    ) -> None:
        self.job = job
        self.data_dir = data_dir
        self.mailbox_size = mailbox_size
        self.max_seconds = max_seconds
        self._tracker = ProgressTracker([stage.weight for stage in job.stages])
        self._eta = EtaEstimator()
        self._failure: StageFailed | None = None
        self._completed = False

    def _log_line(self, line: str, level: str = "info", stage: str | None = None) -> None:
        log_line(self.job, line, level, stage)

    async def run(self) -> None:
        """Run the job to a terminal status. Never raises but for ``Cancelled``/``BaseException``.

        Expects the job to be ``Running`` already (the runner moved it there
        when admitting it).
        """
        job = self.job
        limit = math.inf if self.max_seconds is None else self.max_seconds
        try:
            with job.cancel_scope, trio.move_on_after(limit) as deadline:
                await self._run_stages()
            if deadline.cancelled_caught and not job.cancel_scope.cancel_called:
                self._log_line(f"stopped: ran longer than {limit:g} s", "error")
                self._failure = StageFailed(
                    -1,
                    "timeout",
                    f"the job ran longer than {limit:g} s (--max-job-seconds)",
                    "make the job shorter, or ask the operator for a longer limit",
                )
        except Exception as exc:  # a bug in the runtime or a pipeline: fail this job only
            logger.exception("job actor crashed", extra={"job_id": job.id})
            self._log_line(f"internal error: {exc!r}", "error")
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
                broadcaster = self.job.broadcaster
                async for message in receive:
                    self._handle(message)
                    if broadcaster.congested:
                        await broadcaster.wait_for_room()
                    if self._failure is not None:
                        nursery.cancel_scope.cancel()
                        return
        self._completed = self._failure is None

    async def _stage_actors(self, mailbox: trio.MemorySendChannel[Message]) -> None:
        async with mailbox:
            for index, stage in enumerate(self.job.stages):
                # Logged here, in the stage actors' task, so a stage's own lines
                # (written at once by ctx.log) always come after it.
                self._log_line(f"{stage.name} started", stage=stage.name)
                await mailbox.send(StageStarted(index))
                context = StageContext(
                    job_id=self.job.id,
                    params=self.job.params,
                    stage_name=stage.name,
                    stage_index=index,
                    total_stages=len(self.job.stages),
                    data_dir=self.data_dir,
                    mailbox=mailbox,
                    log_line=partial(self._log_stage_line, stage.name),
                    artifacts=self.job.artifacts,
                )
                failure = await self._run_stage(stage, context)
                if failure is not None:
                    await mailbox.send(failure)
                    return
                self._log_line(f"{stage.name} completed", stage=stage.name)
                await mailbox.send(StageCompleted(index))

    def _log_stage_line(self, stage: str, line: str, level: str = "info") -> None:
        self._log_line(line, level, stage)

    async def _run_stage(self, stage: Stage, context: StageContext) -> StageFailed | None:
        index = context.stage_index
        try:
            if stage.stall_timeout is None:
                await stage.run(context)
            elif not await self._run_watched(stage, context, stage.stall_timeout):
                self._log_line(
                    f"{stage.name}: no progress for {stage.stall_timeout:g} s", "error", stage.name
                )
                return StageFailed(
                    index,
                    "stalled",
                    f"stage {stage.name} reported no progress for {stage.stall_timeout:g} s",
                    "the stage may be stuck on an external resource; check it and retry",
                )
        except StageError as exc:
            self._log_line(f"{stage.name}: {exc.message}", "error", stage.name)
            return StageFailed(index, exc.code, exc.message, exc.remediation)
        except Exception as exc:
            self._log_line(f"{stage.name}: {type(exc).__name__}: {exc}", "error", stage.name)
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
        with trio.CancelScope() as fail_scope:
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
        """Warn after half the stall timeout without a report; keep the failure deadline moving.

        One wakeup per half timeout while the stage reports, however often it does.
        """
        while True:
            seen = watch.last
            await trio.sleep_until(seen + watch.half)
            watch.push()
            if watch.last != seen:
                continue  # reported meanwhile: wait half a timeout from that report
            watch.rearm = rearm = trio.Event()
            await context.warn(
                f"stage {context.stage_name} has reported no progress for {watch.half:g} s"
            )
            await rearm.wait()
            watch.push()

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
                WarningData.build(
                    job_id=job.id, step=job.stages[message.index].name, message=message.message
                )
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
            StepProgressData.build(
                job_id=job.id,
                step=job.stages[report.index].name,
                progress_pct=float(job.progress_pct),
                step_progress_pct=round(float(self._tracker.stage_pct), 2),
                message=job.message,
                eta_seconds=job.eta_seconds,
                current_item=report.current_item,
                total_items=report.total_items,
            )
        )

    def _emit_step_status(self, index: int, state: str) -> None:
        self.job.emit(
            StepStatusData.build(
                job_id=self.job.id,
                step=self.job.stages[index].name,
                step_index=index,
                total_steps=len(self.job.stages),
                state=state,
            )
        )

    def _complete(self) -> None:
        job = self.job
        job.progress_pct = 100.0
        job.message = "done"
        duration = round(job.running_seconds, 3)
        self._log_line(f"done in {duration:g} s")
        job.transition(JobStatus.DONE)
        job.emit_terminal(
            JobCompletedData.build(
                job_id=job.id,
                artifacts=[
                    ArtifactInfo.build(
                        name=a.name, path=a.path, size_bytes=a.size_bytes, mime_type=a.mime_type
                    )
                    for a in job.artifacts
                ],
                duration_seconds=float(duration),
            )
        )

    def _fail(self, failure: StageFailed) -> None:
        tail = [line["message"] for line in self.job.logs[-FAILED_EVENT_LOG_LINES:]]
        self.job.finish_failed(failure.code, failure.message, failure.remediation, tail)


def log_line(job: Job, message: str, level: str = "info", stage: str | None = None) -> None:
    """Add a line to ``job``'s bounded log (the oldest go past :data:`LOG_LINES_KEPT`).

    ``stage`` defaults to the job's current stage.
    """
    logs = job.logs
    entry = {
        "at": utc_iso(utc_now()),
        "level": level,
        "stage": stage or job.stage,
        "message": message,
    }
    logs.append(entry)
    if len(logs) > LOG_LINES_KEPT:
        del logs[: len(logs) - LOG_LINES_KEPT]
