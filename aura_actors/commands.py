"""The client commands of the command line: ``submit``, ``follow``, ``cancel``, ``jobs``.

Exit codes (shared by every client command):

====  ===========================================================
0     done (the job finished ``Done``; or the request succeeded)
1     the job failed, or the server refused the request
2     usage: bad arguments, or params the server rejected (400/422)
3     the job was canceled
4     the server could not be reached, or the connection was lost for good
130   stopped following on Ctrl-C; the job goes on
====  ===========================================================
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from rich.console import Console
from rich.table import Table

from .client import (
    DEFAULT_URL,
    Artifact,
    AuraClient,
    AuraError,
    Conflict,
    ConnectionFailed,
    Event,
    JobSnapshot,
    JobStatus,
    Reconnecting,
    ReconnectPolicy,
    ValidationFailed,
)
from .client.display import (
    EventView,
    FollowState,
    JsonLinesView,
    LiveView,
    PlainView,
    outcome_status,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELED = 3
EXIT_CONNECTION_LOST = 4
EXIT_INTERRUPTED = 130

_EXIT_FOR_STATUS = {
    JobStatus.DONE: EXIT_OK,
    JobStatus.FAILED: EXIT_FAILED,
    JobStatus.CANCELED: EXIT_CANCELED,
}


# -- argument parsing ---------------------------------------------------------------------


def _status(text: str) -> JobStatus:
    for status in JobStatus:
        if status.value.lower() == text.strip().lower():
            return status
    allowed = ", ".join(status.value for status in JobStatus)
    raise argparse.ArgumentTypeError(f"must be one of {allowed}")


def _limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 200:
        raise argparse.ArgumentTypeError("must be from 1 to 200")
    return value


def _retries(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw  # not JSON: a plain string
    return key.strip(), value


def _params_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def add_client_commands(subparsers: Any) -> None:
    """Add ``submit``, ``follow``, ``cancel`` and ``jobs`` to the ``aura-actors`` parser."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument(
        "--url",
        default=os.environ.get("AURA_URL") or DEFAULT_URL,
        help=f"the server (env AURA_URL; default {DEFAULT_URL})",
    )
    server.add_argument(
        "--token",
        default=os.environ.get("AURA_TOKEN") or None,
        help="bearer token when the server has auth on (env AURA_TOKEN)",
    )
    server.add_argument(
        "--json", action="store_true", help="machine output: one JSON object per line"
    )

    following = argparse.ArgumentParser(add_help=False)
    following.add_argument(
        "--cancel-on-interrupt",
        action="store_true",
        help="Ctrl-C cancels the job (without asking); by default it asks on a terminal "
        "and stops following otherwise",
    )
    following.add_argument(
        "--retries",
        type=_retries,
        default=5,
        help="reconnection tries in a row before giving up (default 5; waits 1, 2, 4, 8, 16 s)",
    )
    following.add_argument(
        "--plain", action="store_true", help="plain lines even on a terminal (no live display)"
    )

    submit = subparsers.add_parser(
        "submit",
        parents=[server, following],
        help="start a job",
        description="Start a job of a pipeline (video, synthetic), optionally following it.",
        epilog='examples: aura-actors submit video --topic "Tides" --duration 30 --follow\n'
        "          aura-actors submit synthetic --param stages=2 --param ticks=50",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument("pipeline", help="the pipeline: video or synthetic")
    submit.add_argument("--topic", help="video: what the video is about (required for video)")
    submit.add_argument("--duration", type=float, help="video: durationSeconds (5-600)")
    submit.add_argument("--speed", type=float, help="video: speed factor (> 0)")
    submit.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a param (VALUE is JSON if it parses, else a string); repeatable",
    )
    submit.add_argument(
        "--params", type=_params_json, default=None, metavar="JSON", help="all params as JSON"
    )
    submit.add_argument(
        "--follow", "-f", action="store_true", help="follow the job's progress until it ends"
    )
    submit.set_defaults(handler=run_submit, parser=submit)

    follow = subparsers.add_parser(
        "follow",
        parents=[server, following],
        help="follow a job's progress until it ends",
        description="Show a job's progress live until it ends. Exit code: 0 done, 1 failed, "
        "3 canceled, 4 connection lost, 130 stopped following.",
    )
    follow.add_argument("job_id", metavar="ID")
    follow.add_argument(
        "--last-event-id", default=None, help="start after this event instead of from the start"
    )
    follow.set_defaults(handler=run_follow, parser=follow)

    cancel = subparsers.add_parser(
        "cancel", parents=[server], help="cancel a job", description="Cancel a job."
    )
    cancel.add_argument("job_id", metavar="ID")
    cancel.set_defaults(handler=run_cancel, parser=cancel)

    jobs = subparsers.add_parser(
        "jobs", parents=[server], help="list jobs", description="List your jobs, newest first."
    )
    jobs.add_argument("--status", type=_status, help="only jobs in this status (e.g. Running)")
    jobs.add_argument("--limit", type=_limit, default=20, help="at most this many (1-200)")
    jobs.add_argument("--all", action="store_true", help="every job, page after page")
    jobs.set_defaults(handler=run_jobs, parser=jobs)


# -- running a command --------------------------------------------------------------------


def _error(text: str) -> None:
    sys.stderr.write(f"aura-actors: {text}\n")
    sys.stderr.flush()


def _run(args: argparse.Namespace, body: Callable[[AuraClient], Awaitable[int]]) -> int:
    """Run ``body`` with a client in ``trio.run`` and map errors onto exit codes."""

    async def main() -> int:
        policy = ReconnectPolicy(max_attempts=getattr(args, "retries", 5))
        async with AuraClient(args.url, args.token, reconnect=policy) as client:
            return await body(client)

    try:
        return trio.run(main)
    except ValidationFailed as error:
        _error(str(error))
        return EXIT_USAGE
    except ConnectionFailed as error:
        _error(str(error))
        return EXIT_CONNECTION_LOST
    except AuraError as error:
        _error(str(error))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


def _human(args: argparse.Namespace) -> bool:
    return not args.json and sys.stdout.isatty()


def _artifact_url(args: argparse.Namespace, job_id: str) -> Callable[[Artifact], str]:
    base = args.url.rstrip("/")
    return lambda artifact: f"{base}/api/jobs/{job_id}/artifacts/{artifact.name}"


def _view(args: argparse.Namespace, job_id: str) -> EventView:
    if args.json:
        return JsonLinesView()
    if args.plain or not sys.stdout.isatty():
        return PlainView(artifact_url=_artifact_url(args, job_id))
    return LiveView(Console(), artifact_url=_artifact_url(args, job_id))


def _ask_to_cancel(job_id: str) -> bool:
    sys.stderr.write(f"\nCancel job {job_id}? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in {"y", "yes"}


# -- follow -------------------------------------------------------------------------------


async def follow_job(
    client: AuraClient,
    job_id: str,
    view: EventView,
    *,
    snapshot: JobSnapshot | None = None,
    last_event_id: str | None = None,
    cancel_on_interrupt: bool = False,
    ask: Callable[[str], bool] | None = None,
) -> int:
    """Show a job's events on ``view`` until it ends; return the exit code.

    Ctrl-C (SIGINT): with ``cancel_on_interrupt`` the job is cancelled and the
    stream followed to its ``job-cancelled``; else, with ``ask`` (stdin is a
    terminal), the user is asked whether to cancel; else following stops
    (:data:`EXIT_INTERRUPTED`) and the job goes on. A second Ctrl-C stops
    following at once.
    """
    state = FollowState(job_id)
    final: Event | JobSnapshot | None = None
    failure: AuraError | None = None
    detached = False
    cancel_requested = False

    with trio.open_signal_receiver(signal.SIGINT) as interrupts:
        if snapshot is None:
            try:
                snapshot = await client.get_job(job_id)
            except ConnectionFailed:
                snapshot = None  # the stream retries; the header waits for events
        if snapshot is not None:
            state.seed(snapshot)
        view.start(state)

        def on_reconnect(info: Reconnecting) -> None:
            view.note(
                f"connection lost ({info.reason}); reconnecting in {info.delay:g} s "
                f"(try {info.attempt} of {info.max_attempts})"
            )

        try:
            async with trio.open_nursery() as nursery:

                async def request_cancel() -> None:
                    nonlocal cancel_requested
                    cancel_requested = True
                    view.note(f"cancelling job {job_id} ...")
                    try:
                        await client.cancel_job(job_id)
                    except Conflict:
                        view.note("the job had already ended")
                    except AuraError as error:
                        view.note(f"could not cancel: {error}")

                def detach() -> None:
                    nonlocal detached
                    detached = True
                    nursery.cancel_scope.cancel()

                prompt_scope: trio.CancelScope | None = None

                async def prompt() -> None:
                    nonlocal prompt_scope
                    assert ask is not None
                    with view.paused():
                        with trio.CancelScope() as scope:
                            prompt_scope = scope
                            answer = await trio.to_thread.run_sync(
                                ask, job_id, abandon_on_cancel=True
                            )
                        prompt_scope = None
                        if scope.cancelled_caught:
                            sys.stderr.write("\n")  # the question's line was left open
                        if scope.cancelled_caught or not answer:
                            view.finish(None)  # stop the display without resuming it
                            detach()
                            return
                    await request_cancel()

                async def watch_interrupts() -> None:
                    async for _ in interrupts:
                        if prompt_scope is not None:
                            prompt_scope.cancel()  # a second Ctrl-C at the question: stop
                            return
                        if cancel_requested:
                            detach()
                            return
                        if cancel_on_interrupt:
                            nursery.start_soon(request_cancel)
                        elif ask is not None:
                            nursery.start_soon(prompt)
                        else:
                            detach()
                            return

                async def consume() -> None:
                    nonlocal final, failure
                    try:
                        async with client.events(
                            job_id, last_event_id=last_event_id, on_reconnect=on_reconnect
                        ) as stream:
                            async for event in stream:
                                view.event(event)
                                if event.is_terminal:
                                    final = event
                    except AuraError as error:
                        failure = error
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch_interrupts)
                nursery.start_soon(consume)
        except BaseException:
            view.finish(None)  # stop a live display before the error shows
            raise

    if detached:
        view.finish(final)
        sys.stderr.write(f"stopped following; job {job_id} goes on (aura-actors follow {job_id})\n")
        return EXIT_INTERRUPTED
    if failure is not None:
        view.finish(None)
        raise failure
    if final is None:
        # 204: the job ended and its events expired; its snapshot still says how.
        final = await client.get_job(job_id)
    view.finish(final)
    status = outcome_status(final)
    return EXIT_FAILED if status is None else _EXIT_FOR_STATUS[status]


# -- the commands -------------------------------------------------------------------------


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


def run_submit(args: argparse.Namespace) -> int:
    """``aura-actors submit PIPELINE ... [--follow]``."""
    params = _submit_params(args)

    async def body(client: AuraClient) -> int:
        job = await client.create_job(args.pipeline, params)
        if not args.follow:
            if args.json:
                print(json.dumps(job.raw, ensure_ascii=False), flush=True)
            elif _human(args):
                console = Console()
                console.print(
                    f"Submitted job [bold cyan]{job.id}[/] ({job.pipeline}, {job.status})"
                )
                console.print(f"Follow it: [bold]aura-actors follow {job.id}[/]")
            else:
                print(job.id, flush=True)
            return EXIT_OK
        if not args.json and not _human(args):
            print(f"submitted job {job.id}", flush=True)
        return await follow_job(
            client,
            job.id,
            _view(args, job.id),
            snapshot=job,
            cancel_on_interrupt=args.cancel_on_interrupt,
            ask=_asker(args),
        )

    return _run(args, body)


def _asker(args: argparse.Namespace) -> Callable[[str], bool] | None:
    if args.cancel_on_interrupt or sys.stdin is None or not sys.stdin.isatty():
        return None
    return _ask_to_cancel


def run_follow(args: argparse.Namespace) -> int:
    """``aura-actors follow ID``."""

    async def body(client: AuraClient) -> int:
        return await follow_job(
            client,
            args.job_id,
            _view(args, args.job_id),
            last_event_id=args.last_event_id,
            cancel_on_interrupt=args.cancel_on_interrupt,
            ask=_asker(args),
        )

    return _run(args, body)


def run_cancel(args: argparse.Namespace) -> int:
    """``aura-actors cancel ID``."""

    async def body(client: AuraClient) -> int:
        try:
            job = await client.cancel_job(args.job_id)
        except Conflict:
            job = await client.get_job(args.job_id)
            _error(f"job {job.id} already ended: {job.status.value}")
            return EXIT_FAILED
        if args.json:
            print(json.dumps(job.raw, ensure_ascii=False), flush=True)
        else:
            print(f"cancel requested for job {job.id} (was {job.status.value})", flush=True)
        return EXIT_OK

    return _run(args, body)


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
                print(json.dumps(job.raw, ensure_ascii=False))
        elif _human(args):
            _jobs_table(jobs)
        else:
            for job in jobs:
                created = job.created_at.isoformat() if job.created_at else "-"
                print(
                    f"{job.id}\t{job.status.value}\t{job.pipeline}\t"
                    f"{job.progress_pct:.1f}%\t{job.stage or '-'}\t{created}"
                )
        sys.stdout.flush()
        return EXIT_OK

    return _run(args, body)


def _jobs_table(jobs: list[JobSnapshot]) -> None:
    console = Console()
    if not jobs:
        console.print("no jobs")
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("ID", "STATUS", "PIPELINE", "PROGRESS", "STAGE", "CREATED"):
        table.add_column(column, justify="right" if column == "PROGRESS" else "left")
    for job in jobs:
        created = job.created_at.strftime("%Y-%m-%d %H:%M:%S") if job.created_at else "-"
        table.add_row(
            job.id,
            job.status.value,
            job.pipeline,
            f"{job.progress_pct:.1f}%",
            job.stage or "-",
            created,
        )
    console.print(table)
