"""What each mode runs: ``--smoke`` (tests), ``--quick`` (CI, about 2 min), full (< 10 min)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.abuse.plan import AbusePlan, abuse_plan
from bench.cluster.plan import ClusterPlan, cluster_plan
from bench.http.capacity import CapacityPlan
from bench.http.scenarios import HttpPlan, LatencyRun

SCENARIOS = (
    "spawn",
    "fanout",
    "broadcaster",
    "durability",
    "cancel",
    "video",
    "startup",
    "http",
    "capacity",
    "abuse",
    "cluster",
)


@dataclass(frozen=True, slots=True)
class Plan:
    """The sizes of every scenario in one mode."""

    mode: str
    spawn_sizes: tuple[int, ...]
    spawn_traced_sizes: tuple[int, ...]
    spawn_cancels: int
    fanout_subscribers: tuple[int, ...]
    fanout_deliveries: int
    cancel_counts: dict[str, int]
    http: HttpPlan
    #: ``(durationSeconds, speed)`` of each real video render timed.
    video_renders: tuple[tuple[float, float], ...] = ((30.0, 1000.0),)
    #: Subscriber counts and deliveries of the broadcaster hop (each in both pacings:
    #: ``paced`` costs a scheduler round trip per event, so it is kept smaller).
    broadcaster_subscribers: tuple[int, ...] = (1, 10)
    broadcaster_deliveries: int = 5_000
    #: Jobs submitted (and finished, for the memory measure) by the durability scenario.
    durability_jobs: int = 500
    #: ``(jobs, ticks, subscribers)`` of its delivery measure.
    durability_delivery: tuple[int, int, int] = (4, 500, 2)
    #: How often each command's start is timed.
    startup_repeats: int = 3
    #: The offered-load steps of the capacity scenario (SSE and WebSocket, both servers).
    capacity: CapacityPlan = field(
        default_factory=lambda: CapacityPlan(5, (10, 20), repeats=3, window=0.5, warmup=0.2)
    )
    #: The abuse scenario's window and the size of each abuse.
    abuse: AbusePlan = field(default_factory=lambda: abuse_plan("smoke"))
    #: The cluster scenario's sizes (API nodes and workers on a private Redis).
    cluster: ClusterPlan = field(default_factory=lambda: cluster_plan("smoke"))


def make_plan(mode: str) -> Plan:
    """The plan of ``mode`` (``smoke``, ``quick`` or ``full``)."""
    if mode == "smoke":
        return Plan(
            mode,
            (200,),
            (200,),
            20,
            (1, 10),
            5_000,
            {"sleep": 10, "subprocess": 5, "thread": 10},
            HttpPlan(
                latency=(
                    LatencyRun(5, 20, window=1.0, warmup=0.3),
                    LatencyRun(5, 20, window=1.0, warmup=0.3, transport="ws"),
                ),
                idle_steps=(50,),
                cancels=5,
            ),
            video_renders=((5.0, 1000.0),),
            abuse=abuse_plan("smoke"),
        )
    if mode == "quick":
        return Plan(
            mode,
            (1_000,),
            (1_000,),
            50,
            (1, 10, 100, 1000),
            60_000,
            {"sleep": 100, "subprocess": 50, "thread": 100},
            HttpPlan(
                latency=(
                    LatencyRun(20, 200, window=2.0, warmup=0.5),
                    LatencyRun(20, 200, silent=0.1, window=2.0, warmup=0.5),
                    LatencyRun(20, 200, window=2.0, warmup=0.5, transport="ws"),
                ),
                idle_steps=(200,),
                cancels=20,
            ),
            broadcaster_subscribers=(1, 10, 100),
            broadcaster_deliveries=20_000,
            durability_jobs=2_000,
            durability_delivery=(10, 2_000, 10),
            capacity=CapacityPlan(20, (100, 400), repeats=3, window=0.7, warmup=0.3),
            abuse=abuse_plan("quick"),
            cluster=cluster_plan("quick"),
        )
    return Plan(
        mode,
        (1_000, 10_000, 50_000),
        (1_000, 10_000, 50_000),
        200,
        (1, 10, 100, 1000),
        400_000,
        {"sleep": 1000, "subprocess": 1000, "thread": 1000},
        HttpPlan(
            latency=(
                LatencyRun(100, 1000, window=8.0),
                LatencyRun(100, 1000, silent=0.1, window=8.0),
                LatencyRun(1000, 1000, window=8.0),
                LatencyRun(100, 1000, window=8.0, transport="ws"),
            ),
            idle_steps=(1000, 5000),
            cancels=200,
        ),
        video_renders=((30.0, 1000.0), (30.0, 1.0), (120.0, 1000.0)),
        broadcaster_subscribers=(1, 10, 100, 1000),
        broadcaster_deliveries=200_000,
        durability_jobs=20_000,
        durability_delivery=(100, 2_000, 10),
        capacity=CapacityPlan(100, (250, 500, 750, 1000), repeats=3, window=2.0),
        abuse=abuse_plan("full"),
        cluster=cluster_plan("full"),
    )
