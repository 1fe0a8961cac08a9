"""Every setting of a runtime, each documented where it is defined."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from ._setting import about, check_ranges

#: How hard a commit pushes data to the disk (see :attr:`RuntimeConfig.fsync`).
FsyncMode = Literal["normal", "always"]
#: What a node of a cluster does (see :attr:`RuntimeConfig.role`).
Role = Literal["all", "api", "worker"]

#: What a node name may hold: it goes into Redis messages, consumer names and a file name.
NODE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Every setting of a runtime, each with the default the server uses.

    A field whose metadata holds a :class:`~._setting.Setting` (``about(...)``)
    is a flag of ``aura-actors serve`` and an ``AURA_*`` variable, with that
    help and range. Raises :class:`ValueError` on a value out of its range.
    """

    max_concurrent_jobs: int = field(
        default=16, metadata=about("jobs running at once; the rest wait as Queued", ge=1)
    )
    max_queued_jobs: int = field(
        default=1000,
        metadata=about("jobs waiting beyond which POST /api/jobs answers 429", ge=0),
    )
    history_ttl: float = field(
        default=3600.0,
        metadata=about("seconds a finished job's events stay replayable", ge=0, metavar="SECONDS"),
    )
    max_history_events: int = field(
        default=10_000,
        metadata=about("events kept per job (progress runs compacted) for replay", ge=2),
    )
    subscriber_buffer: int = field(
        default=1024,
        metadata=about("events a subscriber may have waiting before it is dropped", ge=1),
    )
    data_dir: Path = field(
        default_factory=lambda: Path("aura-data"),
        metadata=about(
            "where the job store (jobs.sqlite3) and the job files (artifacts/) live",
            metavar="DIR",
        ),
    )
    #: Keep jobs and their events in SQLite in the data dir (the server always does;
    #: in-memory runtimes for tests, benchmarks and embedding leave it off).
    persist_jobs: bool = False
    fsync: FsyncMode = field(
        default="normal",
        metadata=about(
            "'normal': a stored job survives the process being killed; "
            "'always': it also survives a power cut (an fsync per commit)",
            metavar="normal|always",
        ),
    )
    max_attempts: int = field(
        default=1,
        metadata=about(
            "how often a job may run: one interrupted by a restart runs again while "
            "attempts remain",
            ge=1,
        ),
    )
    retention_days: float | None = field(
        default=None,
        metadata=about("delete finished jobs (record, history, files) older than this", ge=0),
    )
    retention_jobs: int | None = field(
        default=None,
        metadata=about("keep at most this many finished jobs; older ones are deleted", ge=0),
    )
    keep_failed_files: bool = field(
        default=False,
        metadata=about("keep the files of failed and canceled jobs (removed by default)"),
    )
    max_jobs_per_user: int | None = field(
        default=None,
        metadata=about("jobs one user may have Queued or Running at once (beyond: 429)", ge=1),
    )
    max_job_seconds: float | None = field(
        default=None,
        metadata=about("a job running longer than this ends Failed with code timeout", gt=0),
    )
    redis_url: str | None = field(
        default=None,
        metadata=about(
            "keep jobs, histories and logs in this Redis (redis://host:port/db) instead of "
            "SQLite in the data dir, which still holds the files (docs/cluster.md)",
            name="redis",
            metavar="URL",
        ),
    )
    redis_prefix: str = field(
        default="aura",
        metadata=about(
            "every Redis key starts with it, then ':' (several services can share a Redis)",
            metavar="P",
        ),
    )
    role: Role = field(
        default="all",
        metadata=about(
            "with --redis: 'api' serves HTTP and queues jobs, 'worker' runs them (and serves "
            "only /api/health and /metrics), 'all' does both (docs/cluster.md)",
            metavar="all|api|worker",
        ),
    )
    node_name: str | None = field(
        default=None,
        metadata=about(
            "with --redis: this node's name in the cluster and in job snapshots "
            "(letters, digits, '.', '_', '-'; none: <hostname>-<pid>)",
            metavar="NAME",
        ),
    )

    @property
    def store_path(self) -> Path:
        """The embedded store's database: ``data_dir/jobs.sqlite3``."""
        return self.data_dir / "jobs.sqlite3"

    @property
    def artifacts_dir(self) -> Path:
        """Where each job's files go: ``data_dir/artifacts/<job id>``."""
        return self.data_dir / "artifacts"

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.fsync not in ("normal", "always"):
            raise ValueError("fsync must be 'normal' or 'always'")
        if not self.redis_prefix:
            raise ValueError("redis_prefix must not be empty")
        if self.role not in ("all", "api", "worker"):
            raise ValueError("role must be 'all', 'api' or 'worker'")
        if self.node_name is not None and not NODE_NAME.fullmatch(self.node_name):
            raise ValueError("node_name must be 1 to 64 letters, digits, '.', '_' or '-'")

    @property
    def clustered(self) -> bool:
        """Whether this runtime is a node of a cluster (``--redis``)."""
        return self.redis_url is not None

    def check_cluster_flags(self) -> None:
        """Raise :class:`ValueError` when ``role`` or ``node_name`` is set without Redis.

        Not in ``__post_init__``: each flag is checked alone against the defaults first.
        """
        if self.redis_url is None and (self.role != "all" or self.node_name is not None):
            raise ValueError(
                "--role and --node-name (AURA_ROLE, AURA_NODE_NAME) need --redis: "
                "without Redis everything runs in this one process"
            )

    def with_node_name(self) -> RuntimeConfig:
        """This config, with the default node name (``<hostname>-<pid>``) in a cluster."""
        if self.redis_url is None or self.node_name is not None:
            return self
        name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:50] or "node"
        return replace(self, node_name=f"{name}-{os.getpid()}")
