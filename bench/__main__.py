"""``python -m bench``: run the benchmark harness."""

from bench.cli import main

raise SystemExit(main())
