"""The aura-actors benchmark harness.

Runs the runtime's scenarios beside a limit (bare trio) or a peer (FastAPI +
sse-starlette) in the same invocation, prints progress and a final table of
ratios, saves JSON results, draws plots and regenerates ``docs/benchmarks.md``.

Run it with ``python -m bench`` (``--help`` for the options).
"""
