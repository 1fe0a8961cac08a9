"""``aura-actors serve``: the flags of the server and starting it.

The flags' defaults come from :class:`aura_actors.web.ServerSettings`, so the
web package is imported only when this command is configured or run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ._exit import EXIT_OK, EXIT_USAGE

T = TypeVar("T")


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


def configure(serve: argparse.ArgumentParser) -> None:
    """Add the server's flags (each also ``AURA_<NAME>``) to the ``serve`` parser."""
    from ..web import ServerSettings

    defaults = ServerSettings()
    serve.description = "Run the job runtime and its HTTP API (each flag also AURA_<NAME>)."
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
    _configure_files(serve, defaults.data_dir, defaults.demo_jobs)
    serve.set_defaults(handler=run_serve)


def _configure_files(serve: argparse.ArgumentParser, data_dir: Path, demo_jobs: int) -> None:
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
        default=_env("DATA_DIR", Path, data_dir),
        help="where artifacts live",
    )
    serve.add_argument(
        "--demo-jobs",
        type=_non_negative_int,
        default=_env("DEMO_JOBS", _non_negative_int, demo_jobs),
        help="submit this many demo video jobs at start",
    )


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until Ctrl-C / SIGTERM; the exit code."""
    import trio

    from ..runtime import DataDirLocked, SchemaTooNew, StorageUnavailable
    from ..web import ServerSettings, TokenFileError, configure_logging, serve

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
