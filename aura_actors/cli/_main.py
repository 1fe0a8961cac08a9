"""The ``aura-actors`` parser and entry point.

Each subcommand's options are built by its own module, imported only when
that subcommand is the one being run (or :func:`build_parser` is asked for
all of them), so ``aura-actors --version`` or ``aura-actors jobs`` never
import the server, and only the commands that show progress import rich.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from .. import __version__

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    #: ``"module:function"`` of this package that adds the subcommand's options.
    configure: str


_COMMANDS = (
    _Command("serve", "run the API server", "_serve:configure"),
    _Command("submit", "start a job", "_arguments:configure_submit"),
    _Command("follow", "follow a job's progress until it ends", "_arguments:configure_follow"),
    _Command("cancel", "cancel a job", "_arguments:configure_cancel"),
    _Command("jobs", "list jobs", "_arguments:configure_jobs"),
    _Command("logs", "print a job's log (--follow: as it grows)", "_arguments:configure_logs"),
    _Command("retry", "run a failed or canceled job again", "_arguments:configure_retry"),
    _Command("delete", "delete a finished job and its files", "_arguments:configure_delete"),
    _Command(
        "bench",
        "run the benchmark harness (python -m bench) from the source checkout",
        "_bench:configure",
    ),
)


def _load(target: str) -> Callable[..., object]:
    module, _, name = target.partition(":")
    function: Callable[..., object] = getattr(
        importlib.import_module(f"{__package__}.{module}"), name
    )
    return function


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line.

    With ``commands``, only those subcommands get their options (and import
    what they need for them); the others keep just their name and help.
    """
    parser = argparse.ArgumentParser(
        prog="aura-actors", description="A structured-concurrency job runtime on trio."
    )
    parser.add_argument("--version", action="version", version=f"aura-actors {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in _COMMANDS:
        sub = subparsers.add_parser(
            command.name, help=command.help, add_help=command.name != "bench"
        )
        if commands is None or command.name in commands:
            _load(command.configure)(sub)
        # An unknown option of a command is reported with that command's usage.
        sub.set_defaults(command_parser=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aura-actors`` console script; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        # Everything after ``bench`` is the harness's own (argparse would eat ``--help``).
        from ._bench import run_bench

        return run_bench(arguments[1:])
    # The top level has no options taking a value: the first word is the command.
    command = next((word for word in arguments if not word.startswith("-")), None)
    parser = build_parser({command} if command is not None else ())
    args, unknown = parser.parse_known_args(arguments)
    if unknown:
        command_parser: argparse.ArgumentParser = getattr(args, "command_parser", parser)
        command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    handler: Handler = args.handler
    return handler(args)
