"""The ``aura-actors`` command line: ``serve``, ``submit``, ``follow``, ``cancel``, ``jobs``,
``logs``, ``retry``, ``delete``, ``bench``; and the displays of a job's progress
(:mod:`aura_actors.cli.display`).

Imports are lazy: each command imports what it needs when it runs, so
``aura-actors --version`` loads neither the server, the client nor rich.
"""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
