"""The ``aura-actors`` command line: ``serve``, and the client commands of :mod:`.commands`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import trio

from . import __version__
from .commands import add_client_commands

T = TypeVar("T")

#: Exit codes shared by every command.
EXIT_OK = 0
EXIT_USAGE = 2


def _env(name: str, convert: Callable[[str], Any] = str, default: Any = None) -> Any:
    raw = os.environ.get(f"AURA_{name}")
    if raw is None or raw == "":
        return default
    try:
        return convert(raw)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise SystemExit(f"aura-actors: invalid value for AURA_{name}: {raw!r} ({exc})") from None


def _checked(
    convert: Callable[[str], T], valid: Callable[[T], bool], problem: str
) -> Callable[[str], T]:
    """An argparse ``type`` converting with ``convert`` and refusing what is not ``valid``."""

    def parse(text: str) -> T:
        value = convert(text)
        if not valid(value):  # also refuses NaN, which compares false with everything
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


_positive_int = _checked(int, lambda value: value >= 1, "must be at least 1")
_non_negative_int = _checked(int, lambda value: value >= 0, "must not be negative")
_positive_float = _checked(float, lambda value: value > 0, "must be positive")
_non_negative_float = _checked(float, lambda value: value >= 0, "must not be negative")


def _add_serve(subparsers: Any) -> None:
    from .web import ServerSettings

    defaults = ServerSettings()
    serve = subparsers.add_parser(
        "serve",
        help="run the API server",
        description="Run the job runtime and its HTTP API (each flag also AURA_<NAME>).",
    )
    serve.add_argument("--host", default=_env("HOST", default=defaults.host))
    serve.add_argument("--port", type=int, default=_env("PORT", int, defaults.port))
    serve.add_argument(
        "--max-concurrent-jobs",
        type=_positive_int,
        default=_env("MAX_CONCURRENT_JOBS", _positive_int, defaults.max_concurrent_jobs),
        help="jobs running at once; the rest wait as Queued",
    )
    serve.add_argument(
        "--max-queued-jobs",
        type=_non_negative_int,
        default=_env("MAX_QUEUED_JOBS", _non_negative_int, defaults.max_queued_jobs),
        help="beyond it POST /api/jobs answers 429",
    )
    serve.add_argument(
        "--keepalive",
        type=_positive_float,
        default=_env("KEEPALIVE", _positive_float, defaults.keepalive),
        help="seconds of quiet before a ': keep-alive' comment",
    )
    serve.add_argument(
        "--history-ttl",
        type=_non_negative_float,
        default=_env("HISTORY_TTL", _non_negative_float, defaults.history_ttl),
        help="seconds a finished job's events stay replayable",
    )
    serve.add_argument(
        "--auth-tokens",
        type=Path,
        default=_env("AUTH_TOKENS", Path),
        help='JSON file {"tokens": {"<token>": "<user>"}}; enables auth',
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        dest="cors_origins",
        default=None,
        help="allowed CORS origin (repeatable; AURA_CORS_ORIGIN takes a comma list)",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=_env("DATA_DIR", Path, defaults.data_dir),
        help="where artifacts live",
    )
    serve.add_argument(
        "--demo-jobs",
        type=_non_negative_int,
        default=_env("DEMO_JOBS", _non_negative_int, defaults.demo_jobs),
        help="submit this many demo video jobs at start",
    )
    serve.set_defaults(handler=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from .runtime import DataDirLocked, SchemaTooNew, StorageUnavailable
    from .web import ServerSettings, TokenFileError, configure_logging, serve

    cors = args.cors_origins
    if cors is None:
        env_cors = _env("CORS_ORIGIN")
        cors = [o.strip() for o in env_cors.split(",") if o.strip()] if env_cors else None
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        max_concurrent_jobs=args.max_concurrent_jobs,
        max_queued_jobs=args.max_queued_jobs,
        keepalive=args.keepalive,
        history_ttl=args.history_ttl,
        auth_tokens=args.auth_tokens,
        cors_origins=tuple(cors) if cors else ServerSettings().cors_origins,
        data_dir=args.data_dir,
        demo_jobs=args.demo_jobs,
    )
    configure_logging()
    try:
        trio.run(serve, settings)
    except TokenFileError as exc:
        print(f"aura-actors: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DataDirLocked, SchemaTooNew, StorageUnavailable) as exc:
        print(f"aura-actors: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"aura-actors: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
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
