"""The client commands: ``submit``, ``follow``, ``cancel``, ``jobs`` (exit codes: :mod:`._exit`).

Every command that takes a job id takes any unique prefix of one too (:mod:`._resolve`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ..client import Artifact, AuraClient, Conflict, ConnectionFailed, JobSnapshot
from ._common import error, human, print_json, run_with_client
from ._exit import EXIT_FAILED, EXIT_OK
from ._follow import follow_job
from ._resolve import resolve_job
from ._state import job_title
from ._views import EventView, JsonLinesView, PlainView

__all__ = ["run_cancel", "run_follow", "run_jobs", "run_submit", "start_following"]


def _artifact_url(args: argparse.Namespace, job_id: str) -> Callable[[Artifact], str]:
    base = args.url.rstrip("/")
    return lambda artifact: f"{base}/api/jobs/{job_id}/artifacts/{artifact.name}"


def _view(args: argparse.Namespace, job_id: str) -> EventView:
    if args.json:
        return JsonLinesView()
    if args.plain or not sys.stdout.isatty():
        return PlainView(artifact_url=_artifact_url(args, job_id))
    from rich.console import Console

    from ._live import LiveView

    return LiveView(Console(), artifact_url=_artifact_url(args, job_id))


def _ask_to_cancel(job_id: str) -> bool:
    sys.stderr.write(f"\nCancel job {job_id}? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in {"y", "yes"}


def _asker(args: argparse.Namespace) -> Callable[[str], bool] | None:
    if args.cancel_on_interrupt or sys.stdin is None or not sys.stdin.isatty():
        return None
    return _ask_to_cancel


# -- submit and follow --------------------------------------------------------------------


def _submit_params(args: argparse.Namespace) -> dict[str, Any]:
    parser: argparse.ArgumentParser = args.parser
    params: dict[str, Any] = dict(args.params or {})
    video_options = {"topic": args.topic, "durationSeconds": args.duration, "speed": args.speed}
    given = {key: value for key, value in video_options.items() if value is not None}
    if given and args.pipeline != "video":
        flags = ", ".join(f"--{'duration' if k == 'durationSeconds' else k}" for k in given)
        parser.error(f"{flags}: only for the video pipeline (use --param for others)")
    params.update(given)
    params.update(dict(args.param))
    if args.pipeline == "video" and "topic" not in params:
        parser.error('the video pipeline needs --topic "..."')
    return params


def _show_submitted(args: argparse.Namespace, job: JobSnapshot) -> None:
    if args.json:
        print_json(job)
    elif human(args):
        from rich.console import Console

        console = Console()
        console.print(f"Submitted job [bold cyan]{job.id}[/] ({job.pipeline}, {job.status})")
        console.print(f"Follow it: [bold]aura-actors follow {job.id}[/]")
    else:
        print(job.id, flush=True)


async def start_following(
    args: argparse.Namespace, client: AuraClient, job: JobSnapshot, what: str = "submitted"
) -> int:
    """Follow a job just created (``submit``, ``retry``) per ``args``; the exit code.

    With ``--json`` stdout carries the job's events only, one JSON object per line.
    """
    if not args.json and not human(args):
        print(f"{what} job {job.id}", flush=True)
    return await follow_job(
        client,
        job.id,
        _view(args, job.id),
        snapshot=job,
        cancel_on_interrupt=args.cancel_on_interrupt,
        ask=_asker(args),
    )


def run_submit(args: argparse.Namespace) -> int:
    """``aura-actors submit PIPELINE ... [--follow]``."""
    params = _submit_params(args)

    async def body(client: AuraClient) -> int:
        job = await client.create_job(args.pipeline, params)
        if not args.follow:
            _show_submitted(args, job)
            return EXIT_OK
        return await start_following(args, client, job)

    return run_with_client(args, body)


def run_follow(args: argparse.Namespace) -> int:
    """``aura-actors follow ID``."""

    async def body(client: AuraClient) -> int:
        job_id, job = args.job_id, None
        try:
            job = await resolve_job(client, job_id)
            job_id = job.id
        except ConnectionFailed:
            pass  # not there yet: the stream tries again, as often as --retries says
        return await follow_job(
            client,
            job_id,
            _view(args, job_id),
            snapshot=job,
            last_event_id=args.last_event_id,
            cancel_on_interrupt=args.cancel_on_interrupt,
            ask=_asker(args),
        )

    return run_with_client(args, body)


# -- cancel and jobs ----------------------------------------------------------------------


def run_cancel(args: argparse.Namespace) -> int:
    """``aura-actors cancel ID``."""

    async def body(client: AuraClient) -> int:
        job_id = (await resolve_job(client, args.job_id)).id
        try:
            job = await client.cancel_job(job_id)
        except Conflict:
            job = await client.get_job(job_id)
            error(f"job {job.id} already ended: {job.status.value}")
            return EXIT_FAILED
        if args.json:
            print_json(job)
        else:
            print(f"cancel requested for job {job.id} (was {job.status.value})", flush=True)
        return EXIT_OK

    return run_with_client(args, body)


def run_jobs(args: argparse.Namespace) -> int:
    """``aura-actors jobs [--status S] [--limit N] [--all]``."""

    async def body(client: AuraClient) -> int:
        jobs: list[JobSnapshot] = []
        if args.all:
            async for job in client.iter_jobs(status=args.status, page_size=args.limit):
                jobs.append(job)
        else:
            jobs = list((await client.list_jobs(status=args.status, limit=args.limit)).jobs)
        if args.json:
            for job in jobs:
                print_json(job)
        elif human(args):
            _jobs_table(jobs)
        else:
            for job in jobs:
                print(
                    f"{job.id}\t{job.status.value}\t{job.pipeline}\t"
                    f"{job.progress_pct:.1f}%\t{job.stage or '-'}\t{job.created_at.isoformat()}\t"
                    f"{job_title(job.pipeline, job.params)}"
                )
        sys.stdout.flush()
        return EXIT_OK

    return run_with_client(args, body)


def _jobs_table(jobs: list[JobSnapshot]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(show_edge=False, header_style="bold")
    table.add_column("ID", no_wrap=True)
    table.add_column("TITLE", overflow="ellipsis", no_wrap=True, max_width=40)
    for column in ("STATUS", "PIPELINE", "PROGRESS", "STAGE", "CREATED"):
        table.add_column(column, justify="right" if column == "PROGRESS" else "left")
    for job in jobs:
        table.add_row(
            job.id,
            escape(job_title(job.pipeline, job.params)),
            job.status.value,
            job.pipeline,
            f"{job.progress_pct:.1f}%",
            job.stage or "-",
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)
