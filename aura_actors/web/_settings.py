"""Every setting of the server, in one place, each documented where it is defined."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..runtime import RuntimeConfig


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What ``aura-actors serve`` runs with (each a flag and an ``AURA_<NAME>`` variable)."""

    #: Interface to listen on.
    host: str = "127.0.0.1"
    #: TCP port; 0 picks a free one (the printed URL says which).
    port: int = 8000
    #: Jobs running at once; the rest wait as ``Queued``.
    max_concurrent_jobs: int = 16
    #: Jobs waiting beyond which ``POST /api/jobs`` answers 429.
    max_queued_jobs: int = 1000
    #: Seconds of quiet after which a stream gets a ``: keep-alive`` comment.
    keepalive: float = 10.0
    #: Seconds a finished job's events stay replayable.
    history_ttl: float = 3600.0
    #: JSON file ``{"tokens": {"<token>": "<user>"}}``; ``None`` disables auth.
    auth_tokens: Path | None = None
    #: Origins allowed by CORS.
    cors_origins: tuple[str, ...] = ("http://localhost:5173",)
    #: Where artifacts live.
    data_dir: Path = field(default_factory=lambda: Path("aura-data"))
    #: The ``retry:`` an SSE stream opens with, in milliseconds.
    sse_retry_ms: int = 1000
    #: Events a subscriber may have waiting before it is closed as overflowed.
    subscriber_buffer: int = 1024
    #: Seconds between WebSocket pings.
    websocket_ping_interval: float = 20.0
    #: Seconds in-flight requests get to finish at shutdown before they are cut.
    graceful_timeout: float = 3.0
    #: ``video`` jobs submitted at start, so a newcomer sees something move.
    demo_jobs: int = 0

    def runtime_config(self) -> RuntimeConfig:
        """The runtime's share of these settings."""
        return RuntimeConfig(
            max_concurrent_jobs=self.max_concurrent_jobs,
            max_queued_jobs=self.max_queued_jobs,
            history_ttl=self.history_ttl,
            subscriber_buffer=self.subscriber_buffer,
            data_dir=self.data_dir,
            # The job store lives in the data dir: finished jobs outlive a restart.
            persist_jobs=True,
        )
