"""Taking back the jobs an earlier process left unfinished (section 7 of the contract)."""

from __future__ import annotations

import logging

from ._job import Job
from ._pipeline import PipelineRegistry
from ._records import JobRecord
from ._runner import JobRunner
from ._status import JobStatus

logger = logging.getLogger("aura_actors.runtime")


def recover(runner: JobRunner, pipelines: PipelineRegistry, unfinished: list[JobRecord]) -> None:
    """Hand ``runner`` the stored jobs that were ``Queued`` or ``Running`` when a process stopped.

    ``Queued`` jobs wait again in their order; ``Running`` ones run again
    first while attempts remain, else end ``Failed`` with ``interrupted``.
    """
    again: list[Job] = []
    for record in unfinished:
        job = _resume(runner, pipelines, record)
        if job is None:
            continue
        runner.live[job.id] = job
        if job.status is JobStatus.QUEUED:
            runner.queue.push(job)
        elif job.attempt < runner.config.max_attempts:
            again.append(job)
        else:
            job.finish_failed(
                "interrupted",
                "the server stopped while the job was running",
                "retry the job",
                [],
            )
            runner.retire_soon(job)
    for job in again:
        runner.queue.push_first(job)
    runner.admit_waiting()


def _resume(runner: JobRunner, pipelines: PipelineRegistry, record: JobRecord) -> Job | None:
    try:
        definition = pipelines.get(record.data["pipeline"])
        stages = definition.build(definition.validate(record.data["params"]))
    except Exception as exc:
        logger.error("stored job cannot run again", extra={"job_id": record.id, "error": str(exc)})
        stages = ()
    job = Job.resume(record, stages=stages, broadcaster=runner.broadcaster)
    if not stages:
        runner.live[job.id] = job  # held until its end is stored, as every ending job
        if job.status is JobStatus.QUEUED:  # Queued -> Failed is no transition
            job.start_attempt(runner.config.node_name)
        job.finish_failed("interrupted", "the job's pipeline is gone", "submit it again", [])
        runner.retire_soon(job)
        return None
    return job
