"""What every client command shares: running with a client, errors to exit codes, output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable

import trio

from ..client import (
    AuraClient,
    AuraError,
    ConnectionFailed,
    JobSnapshot,
    ReconnectPolicy,
    Unauthorized,
    ValidationFailed,
)
from ..protocol import dump_wire
from ._exit import EXIT_CONNECTION_LOST, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from ._resolve import AmbiguousJobId

__all__ = ["error", "human", "print_json", "quiet_stdout", "run_with_client"]


def error(text: str) -> None:
    """One ``aura-actors: ...`` line on stderr."""
    sys.stderr.write(f"aura-actors: {text}\n")
    sys.stderr.flush()


def human(args: argparse.Namespace) -> bool:
    """Output for a person: not ``--json``, and stdout is a terminal."""
    return not args.json and sys.stdout.isatty()


def print_json(job: JobSnapshot) -> None:
    print(json.dumps(dump_wire(job), ensure_ascii=False), flush=True)


def quiet_stdout() -> None:
    """Whoever read stdout went away (``| head``): what is left goes nowhere, silently.

    Without this, Python's last flush of stdout at exit reports the broken pipe.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _token_hint(args: argparse.Namespace) -> str:
    if getattr(args, "token", None):
        return "the server did not accept the token: check --token (or AURA_TOKEN)"
    return "the server needs a token: pass --token TOKEN, or set AURA_TOKEN"


def _only_broken_pipes(group: BaseExceptionGroup[BaseException]) -> bool:
    rest = group.subgroup(lambda exc: not isinstance(exc, BrokenPipeError | BaseExceptionGroup))
    return rest is None


def run_with_client(args: argparse.Namespace, body: Callable[[AuraClient], Awaitable[int]]) -> int:
    """Run ``body`` with a client in ``trio.run`` and map errors onto exit codes."""

    async def main() -> int:
        policy = ReconnectPolicy(max_attempts=getattr(args, "retries", 5))
        async with AuraClient(args.url, args.token, reconnect=policy) as client:
            return await body(client)

    try:
        return trio.run(main)
    except AmbiguousJobId as ambiguous:
        error(str(ambiguous))
        return EXIT_USAGE
    except ValidationFailed as failure:
        error(str(failure))
        return EXIT_USAGE
    except ConnectionFailed as failure:
        error(str(failure))
        return EXIT_CONNECTION_LOST
    except Unauthorized as refused:
        error(str(refused))
        error(_token_hint(args))
        return EXIT_FAILED
    except AuraError as failure:
        error(str(failure))
        return EXIT_FAILED
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        quiet_stdout()
        return EXIT_OK
    except BaseExceptionGroup as group:
        if not _only_broken_pipes(group):
            raise
        quiet_stdout()
        return EXIT_OK
