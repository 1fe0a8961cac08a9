"""The ``cluster`` scenario: API nodes and workers on one Redis, beside one process.

Each measure starts its own processes (:mod:`bench.cluster.nodes`): a private
``redis-server`` on a free port, ``aura-actors serve --redis ... --role api``
and ``--role worker`` nodes on one key prefix, and, for the delivery measure,
the single-process server in the same run. :mod:`bench.cluster.scenario`
drives the measures; :mod:`bench.cluster.plan` holds their sizes.
"""
