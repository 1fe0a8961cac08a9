"""The ``abuse`` scenario: ``/api/health`` and a fresh stream's first event under hostile load.

One aura-actors server, a few jobs producing events; for each condition (quiet,
then each abuse of issue 11) an attacker process (:mod:`bench.abuse.attacks`)
runs the abuse while this process probes the server (:mod:`bench.abuse.probe`);
:mod:`bench.abuse.scenario` drives it and turns the figures into ratios to the
quiet condition of the same run.
"""
