"""``python -m aura_actors``: the same as the ``aura-actors`` command."""

from .cli import main

raise SystemExit(main())
