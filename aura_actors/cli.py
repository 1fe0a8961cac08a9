"""The ``aura-actors`` command line: ``serve``, and the client commands of :mod:`.commands`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from . import __version__
from .commands import add_client_commands

#: Exit codes shared by every command.
EXIT_OK = 0
EXIT_USAGE = 2


def _add_serve(subparsers: Any) -> None:
    from .web import add_arguments

    serve = subparsers.add_parser(
        "serve",
        help="run the API server",
        description="Run the job runtime and its HTTP API (each flag also AURA_<NAME>).",
    )
    add_arguments(serve)
    serve.set_defaults(handler=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from .runtime import JobStoreError
    from .web import (
        SettingsError,
        TokenFileError,
        UntestedHypercorn,
        configure_logging,
        serve,
        settings_from_args,
    )

    try:
        settings = settings_from_args(args, os.environ)
    except SettingsError as exc:
        print(f"aura-actors: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging()
    try:
        trio.run(serve, settings)
    except TokenFileError as exc:
        print(f"aura-actors: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (JobStoreError, UntestedHypercorn) as exc:
        print(f"aura-actors: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        host, port = settings.host, settings.port
        print(f"aura-actors: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return EXIT_OK


def _add_bench(subparsers: Any) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="run the benchmark harness (python -m bench) from the source checkout",
        add_help=False,
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    return run_bench(args.bench_args)


def run_bench(bench_args: Sequence[str]) -> int:
    """Run ``python -m bench`` with ``bench_args`` in the source checkout."""
    import subprocess

    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "bench" / "__main__.py").is_file():
        print(
            "aura-actors: the benchmark harness lives in the source checkout's bench/ folder; "
            "install aura-actors from a checkout (pip install -e '.[bench]')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    command = [sys.executable, "-m", "bench", *bench_args]
    return subprocess.run(command, cwd=checkout, check=False).returncode


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog="aura-actors", description="A structured-concurrency job runtime on trio."
    )
    parser.add_argument("--version", action="version", version=f"aura-actors {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_serve(subparsers)
    add_client_commands(subparsers)
    _add_bench(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aura-actors`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        # Everything after ``bench`` is the harness's own (argparse would eat ``--help``).
        return run_bench(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(arguments)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
