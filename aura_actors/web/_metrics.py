"""``GET /metrics``: the server's state in Prometheus text format.

Nothing in it names a job, a user, a param or a token: only counts, states
and latency distributions. Each app has its own registry (several servers
may live in one process, as in the tests).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..runtime import Event, Runtime
from ._job_counts import reported_counts
from ._penalty import PenaltyBox

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServerMetrics:
    """The metrics of one server; also the runtime's observer (:class:`RuntimeObserver`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.jobs = Gauge(
            "aura_jobs",
            "Jobs stored, by status and pipeline",
            ["status", "pipeline"],
            registry=registry,
        )
        self.queued = Gauge(
            "aura_queue_depth",
            "Jobs waiting for a slot (in a cluster: the whole cluster's)",
            registry=registry,
        )
        self.running = Gauge(
            "aura_running_jobs",
            "Jobs running (in a cluster: on every node)",
            registry=registry,
        )
        self.subscribers = Gauge(
            "aura_subscribers",
            "Open event streams, by transport",
            ["transport"],
            registry=registry,
        )
        self.events = Counter(
            "aura_events_published",
            "Events stored and offered to subscribers, by type",
            ["type"],
            registry=registry,
        )
        self.delivery_lag = Histogram(
            "aura_delivery_lag_seconds",
            "From an event's fan-out to its write to a subscriber's connection",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.cancel_latency = Histogram(
            "aura_cancel_latency_seconds",
            "From a cancel request to the job's end being stored",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_latency = Histogram(
            "aura_store_commit_seconds",
            "How long one storage commit took",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_failures = Counter(
            "aura_store_commit_failures", "Storage commits that failed", registry=registry
        )
        self.storage_ok = Gauge(
            "aura_storage_ok", "1 while storage works, 0 while it fails", registry=registry
        )
        for transport in ("sse", "websocket"):
            self.subscribers.labels(transport)

    def watch_penalty(self, box: PenaltyBox) -> None:
        """Show ``box``'s addresses, offences and turned-away connections."""
        self.registry.register(_PenaltyCollector(box))

    # -- the runtime's observer --------------------------------------------------------

    def committed(self, seconds: float, events: Sequence[Event]) -> None:
        """Count a commit and its events."""
        self.commit_latency.observe(seconds)
        for event in events:
            self.events.labels(event.type.value).inc()

    def commit_failed(self) -> None:
        """Count a failed commit."""
        self.commit_failures.inc()

    def cancel_took(self, seconds: float) -> None:
        """Observe a cancel's latency."""
        self.cancel_latency.observe(seconds)

    # -- the web layer's side ----------------------------------------------------------

    def stream_opened(self, transport: str) -> None:
        """A client started following events (``sse`` or ``websocket``)."""
        self.subscribers.labels(transport).inc()

    def stream_closed(self, transport: str) -> None:
        """A client stopped following events."""
        self.subscribers.labels(transport).dec()

    def delivered(self, published_at: float | None, now: float) -> None:
        """One live event written to a connection (replayed ones are not lag)."""
        if published_at is not None:
            self.delivery_lag.observe(now - published_at)

    async def render(self, runtime: Runtime) -> bytes:
        """Refresh the gauges from ``runtime`` and return the text exposition. A checkpoint.

        Storage's counts are read once: ``aura_jobs``, and on a cluster's node the
        queue depth and running jobs, the cluster's as health reports them.
        """
        self.storage_ok.set(0 if runtime.storage_problem else 1)
        try:
            stored = await runtime.storage.count_jobs()
        except Exception:  # storage failing: the other metrics still say so
            stored = None
        counts = reported_counts(runtime, stored)
        self.queued.set(counts.queued)
        self.running.set(counts.running)
        if stored is not None:
            self.jobs.clear()
            for (status, pipeline), count in stored.items():
                self.jobs.labels(status, pipeline).set(count)
        return generate_latest(self.registry)


class _PenaltyCollector(Collector):
    """The penalty box's counts, read when the metrics are rendered."""

    def __init__(self, box: PenaltyBox) -> None:
        self.box = box

    def collect(self) -> Iterator[Metric]:
        box = self.box
        yield GaugeMetricFamily(
            "aura_penalized_addresses",
            "Client addresses the penalty box remembers (in or past their cool-down)",
            value=len(box),
        )
        yield CounterMetricFamily(
            "aura_abuse_offences",
            "Connections closed for abuse that started or escalated a cool-down",
            value=box.offences,
        )
        yield CounterMetricFamily(
            "aura_connections_turned_away",
            "Connections reset at accept because their address was in its cool-down",
            value=box.refused,
        )
