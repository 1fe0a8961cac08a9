"""``aura-actors serve``: the flags of the server and starting it.

The flags, their ``AURA_*`` variables, defaults and range checks are made
from the fields of :class:`aura_actors.web.ServerSettings` (see
``aura_actors.web._settings_cli``), so the web package is imported only when
this command is configured or run.
"""

from __future__ import annotations

import argparse
import os
import sys

from ._exit import EXIT_OK, EXIT_USAGE


def configure(serve: argparse.ArgumentParser) -> None:
    """Add the server's flags (each also ``AURA_<NAME>``) to the ``serve`` parser."""
    from ..web import add_arguments

    serve.description = "Run the job runtime and its HTTP API (each flag also AURA_<NAME>)."
    add_arguments(serve)
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until Ctrl-C / SIGTERM; the exit code."""
    import trio

    from ..runtime import DataDirLocked, SchemaTooNew, StorageUnavailable
    from ..web import (
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
    configure_logging(settings.log_level, settings.log_format)
    try:
        trio.run(serve, settings)
    except TokenFileError as exc:
        print(f"aura-actors: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DataDirLocked, SchemaTooNew, StorageUnavailable, UntestedHypercorn) as exc:
        print(f"aura-actors: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        host, port = settings.host, settings.port
        print(f"aura-actors: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return EXIT_OK
