"""The options of the client commands: ``submit``, ``follow``, ``cancel``, ``jobs``,
``retry``, ``delete``, ``logs``.

Only argparse here: the commands themselves (:mod:`._commands`) and the
client they use are imported when a command runs.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..protocol import JobStatus

#: Where ``aura-actors serve`` listens by default (the client's ``DEFAULT_URL``).
DEFAULT_URL = "http://127.0.0.1:8000"


def _handler(name: str, module: str = "_commands") -> Callable[[argparse.Namespace], int]:
    """The command ``name`` of ``module`` (of this package), imported when it runs."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        commands = importlib.import_module(f"{__package__}.{module}")
        code: int = getattr(commands, name)(args)
        return code

    return run


_ID_HELP = "the job's id, or any unique start of it (e.g. 74ef7efa)"


# -- value types --------------------------------------------------------------------------


def _status(text: str) -> JobStatus:
    from ..protocol import JobStatus

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


# -- option groups shared by several commands ---------------------------------------------


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("AURA_URL") or DEFAULT_URL,
        help=f"the server (env AURA_URL; default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("AURA_TOKEN") or None,
        help="bearer token when the server has auth on (env AURA_TOKEN)",
    )
    parser.add_argument(
        "--json", action="store_true", help="machine output: one JSON object per line"
    )


def _follow_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="follow the job's progress until it ends (with --json: one JSON event per line)",
    )


def _following_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cancel-on-interrupt",
        action="store_true",
        help="Ctrl-C cancels the job (without asking); by default it asks on a terminal "
        "and stops following otherwise",
    )
    parser.add_argument(
        "--retries",
        type=_retries,
        default=5,
        help="reconnection tries in a row before giving up (default 5; waits 1, 2, 4, 8, 16 s)",
    )
    parser.add_argument(
        "--plain", action="store_true", help="plain lines even on a terminal (no live display)"
    )


# -- the commands -------------------------------------------------------------------------


def configure_submit(submit: argparse.ArgumentParser) -> None:
    """``aura-actors submit PIPELINE [params] [--follow]``."""
    submit.description = "Start a job of a pipeline (video, synthetic), optionally following it."
    submit.epilog = (
        'examples: aura-actors submit video --topic "Tides" --duration 30 --follow\n'
        "          aura-actors submit synthetic --param stages=2 --param ticks=50"
    )
    submit.formatter_class = argparse.RawDescriptionHelpFormatter
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
    _follow_flag(submit)
    _server_options(submit)
    _following_options(submit)
    submit.set_defaults(handler=_handler("run_submit"), parser=submit)


def configure_follow(follow: argparse.ArgumentParser) -> None:
    """``aura-actors follow ID``."""
    follow.description = (
        "Show a job's progress live until it ends. Exit code: 0 done, 1 failed, "
        "3 canceled, 4 connection lost, 130 stopped following."
    )
    follow.add_argument("job_id", metavar="ID", help=_ID_HELP)
    follow.add_argument(
        "--last-event-id", default=None, help="start after this event instead of from the start"
    )
    _server_options(follow)
    _following_options(follow)
    follow.set_defaults(handler=_handler("run_follow"), parser=follow)


def configure_cancel(cancel: argparse.ArgumentParser) -> None:
    """``aura-actors cancel ID``."""
    cancel.description = "Cancel a job."
    cancel.add_argument("job_id", metavar="ID", help=_ID_HELP)
    _server_options(cancel)
    cancel.set_defaults(handler=_handler("run_cancel"), parser=cancel)


def configure_jobs(jobs: argparse.ArgumentParser) -> None:
    """``aura-actors jobs [--status S] [--limit N] [--all]``."""
    jobs.description = (
        "List your jobs, newest first, with a title to tell them apart: the topic, "
        "or the pipeline and its params. When stdout is not a terminal, one "
        "tab-separated line per job: id, status, pipeline, progress, stage, created, title."
    )
    jobs.add_argument("--status", type=_status, help="only jobs in this status (e.g. Running)")
    jobs.add_argument("--limit", type=_limit, default=20, help="at most this many (1-200)")
    jobs.add_argument("--all", action="store_true", help="every job, page after page")
    _server_options(jobs)
    jobs.set_defaults(handler=_handler("run_jobs"), parser=jobs)


def configure_retry(retry: argparse.ArgumentParser) -> None:
    """``aura-actors retry ID [--follow]``."""
    retry.description = (
        "Run a Failed or Canceled job again: a new job with the same pipeline and params "
        "(its retryOf names the old one). Prints the new job's id."
    )
    retry.add_argument("job_id", metavar="ID", help=_ID_HELP)
    _follow_flag(retry)
    _server_options(retry)
    _following_options(retry)
    retry.set_defaults(handler=_handler("run_retry", "_manage"), parser=retry)


def configure_delete(delete: argparse.ArgumentParser) -> None:
    """``aura-actors delete ID [--yes]``."""
    delete.description = (
        "Delete a finished job: its record, events, log and files, for good. "
        "Asks first (reading the answer from stdin) unless --yes."
    )
    delete.add_argument("job_id", metavar="ID", help=_ID_HELP)
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    _server_options(delete)
    delete.set_defaults(handler=_handler("run_delete", "_manage"), parser=delete)


def configure_logs(logs: argparse.ArgumentParser) -> None:
    """``aura-actors logs ID [--follow]``."""
    logs.description = (
        "Print a job's log: its stages, warnings and failure, one line each "
        "(the server keeps the last lines of each job). With --follow, print new "
        "lines as the job goes on, until it ends; the exit code then says how it "
        "ended, as for follow (0 done, 1 failed, 3 canceled)."
    )
    logs.add_argument("job_id", metavar="ID", help=_ID_HELP)
    logs.add_argument(
        "--follow", "-f", action="store_true", help="print new lines until the job ends"
    )
    _server_options(logs)
    logs.add_argument(
        "--retries",
        type=_retries,
        default=5,
        help="with --follow: reconnection tries in a row before giving up (default 5)",
    )
    logs.set_defaults(handler=_handler("run_logs", "_manage"), parser=logs)
