"""The commands about a job that exists: ``retry``, ``delete``, ``logs``.

Exit codes: :mod:`._exit`. Each takes a job id or any unique prefix of one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ..client import AuraClient, Conflict, Event, JobSnapshot, LogLine
from ..protocol import EventType, dump_wire
from ._commands import start_following
from ._common import error, human, print_json, run_with_client
from ._exit import EXIT_CANCELED, EXIT_FAILED, EXIT_OK
from ._resolve import resolve_job
from ._state import job_title, outcome_status

__all__ = ["LogPrinter", "new_log_lines", "run_delete", "run_logs", "run_retry"]

_EXIT_FOR_OUTCOME = {"Done": EXIT_OK, "Failed": EXIT_FAILED, "Canceled": EXIT_CANCELED}


# -- retry --------------------------------------------------------------------------------


def run_retry(args: argparse.Namespace) -> int:
    """``aura-actors retry ID [--follow]``: run a Failed or Canceled job again, as a new job."""

    async def body(client: AuraClient) -> int:
        old = await resolve_job(client, args.job_id)
        try:
            job = await client.retry_job(old.id)
        except Conflict:
            error(
                f"job {old.id} is {old.status.value}: only Failed or Canceled jobs can be retried"
            )
            return EXIT_FAILED
        if args.follow:
            return await start_following(args, client, job, what=f"retrying job {old.id} as")
        if args.json:
            print_json(job)
        elif human(args):
            print(f"Retrying job {old.id} as job {job.id} ({job.status.value})")
            print(f"Follow it: aura-actors follow {job.id}", flush=True)
        else:
            print(job.id, flush=True)
        return EXIT_OK

    return run_with_client(args, body)


# -- delete -------------------------------------------------------------------------------


def _confirm_delete(job: JobSnapshot) -> bool:
    """Ask on stderr, read the answer from stdin (``y`` deletes; anything else, or none, not)."""
    title = job_title(job.pipeline, job.params)
    sys.stderr.write(
        f"Delete job {job.id} ({title}, {job.status.value})?\n"
        "Its record, events, log and files are removed for good. [y/N] "
    )
    sys.stderr.flush()
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    if not answer.endswith("\n"):
        sys.stderr.write("\n")
    return answer.strip().lower() in {"y", "yes"}


def run_delete(args: argparse.Namespace) -> int:
    """``aura-actors delete ID [--yes]``: remove a finished job, its history and its files."""

    async def body(client: AuraClient) -> int:
        job = await resolve_job(client, args.job_id)
        if not job.is_terminal:
            error(
                f"job {job.id} is {job.status.value}: only finished jobs can be deleted "
                f"(cancel it first: aura-actors cancel {job.id})"
            )
            return EXIT_FAILED
        if not args.yes and not _confirm_delete(job):
            error(f"job {job.id} not deleted")
            return EXIT_FAILED
        try:
            await client.delete_job(job.id)
        except Conflict as refused:
            error(str(refused))
            return EXIT_FAILED
        if args.json:
            print(json.dumps({"id": job.id, "deleted": True}), flush=True)
        else:
            print(f"deleted job {job.id}", flush=True)
        return EXIT_OK

    return run_with_client(args, body)


# -- logs ---------------------------------------------------------------------------------


def _key(line: LogLine) -> tuple[object, ...]:
    return (line.at, line.level, line.stage, line.message)


def new_log_lines(seen: Sequence[LogLine], current: Sequence[LogLine]) -> list[LogLine]:
    """The lines of ``current`` that come after what ``seen`` showed.

    The server keeps a job's last lines only, so ``current`` may have lost some
    of ``seen``'s first lines: it is ``seen[d:]`` plus new lines, for the
    smallest such ``d``. With no overlap at all, every line is new.
    """
    old = [_key(line) for line in seen]
    now = [_key(line) for line in current]
    for dropped in range(len(old) + 1):
        kept = len(old) - dropped
        if now[:kept] == old[dropped:]:
            return list(current[kept:])
    return list(current)


class LogPrinter:
    """Prints a job's log lines, each once, however often the whole log is fetched again."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self._seen: list[LogLine] = []

    def show(self, lines: Sequence[LogLine]) -> None:
        """Print the lines not printed yet."""
        for line in new_log_lines(self._seen, lines):
            print(self.format(line))
        sys.stdout.flush()
        self._seen = list(lines)

    def format(self, line: LogLine) -> str:
        if self.as_json:
            return json.dumps(dump_wire(line), ensure_ascii=False)
        at = line.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        stage = f" [{line.stage}]" if line.stage else ""
        return f"{at} {line.level:<7}{stage} {line.message}"


async def _follow_logs(client: AuraClient, job: JobSnapshot, printer: LogPrinter) -> int:
    """Fetch the log again on each event of the job but progress; until it ends."""
    final: Event | JobSnapshot | None = None
    last_id = None if job.last_event_id is None else str(job.last_event_id)
    async with client.events(job.id, last_event_id=last_id) as stream:
        async for event in stream:
            if event.type == EventType.STEP_PROGRESS:
                continue
            printer.show((await client.job_logs(job.id)).lines)
            if event.is_terminal:
                final = event
                break
    if final is None:  # 204: it had ended already
        final = await client.get_job(job.id)
    printer.show((await client.job_logs(job.id)).lines)
    status = outcome_status(final)
    return EXIT_FAILED if status is None else _EXIT_FOR_OUTCOME[status.value]


def run_logs(args: argparse.Namespace) -> int:
    """``aura-actors logs ID [--follow]``."""

    async def body(client: AuraClient) -> int:
        job = await resolve_job(client, args.job_id)
        printer = LogPrinter(as_json=args.json)
        printer.show((await client.job_logs(job.id)).lines)
        if not args.follow:
            return EXIT_OK
        if job.is_terminal:
            return _EXIT_FOR_OUTCOME[job.status.value]
        # On stderr, so that stdout holds the log alone.
        sys.stderr.write(f"following the log of job {job.id} ({job.status.value}) until it ends\n")
        sys.stderr.flush()
        return await _follow_logs(client, job, printer)

    return run_with_client(args, body)
