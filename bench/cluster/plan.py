"""The sizes of the ``cluster`` scenario in one mode."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    """What the cluster scenario runs."""

    #: Delivery: jobs, SSE clients (client *i* follows job *i* mod ``jobs``), window seconds.
    jobs: int
    clients: int
    window: float
    warmup: float
    #: Cancels sent to the API node of jobs running on a worker.
    cancels: int
    #: Jobs of the throughput measure (each ``throughput_ticks`` ticks of no sleep).
    throughput_jobs: int
    throughput_ticks: int
    #: Dead-worker detection: how many kills, and the workers' ``--worker-timeout``.
    kills: int
    worker_timeout: float
    tick_seconds: float = 0.1
    #: Delivery's load steps: the jobs' tick seconds, lightest first (the last is
    #: ``tick_seconds``, the headline); offered events/s is ``clients / tick``.
    steps: tuple[float, ...] = (0.1,)
    #: Measuring windows per load step (the median window's figures are kept).
    repeats: int = 1
    #: Slots per worker (``--max-concurrent-jobs``) and queued jobs allowed.
    max_jobs: int = 2000


def cluster_plan(mode: str) -> ClusterPlan:
    """The plan of ``mode`` (``smoke``: seconds; ``quick``: about a minute; full: a few)."""
    if mode == "smoke":
        return ClusterPlan(5, 20, 1.0, 0.5, 5, 10, 20, 1, 2.0)
    if mode == "quick":
        return ClusterPlan(50, 200, 2.0, 0.5, 20, 50, 100, 1, 2.0, steps=(0.2, 0.1))
    return ClusterPlan(
        1000, 1000, 8.0, 1.0, 100, 200, 500, 1, 2.0, steps=(0.4, 0.2, 0.1), repeats=3
    )
