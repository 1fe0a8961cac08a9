"""Every setting of a runtime, each documented where it is defined."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

#: How hard a commit pushes data to the disk (see :attr:`RuntimeConfig.fsync`).
FsyncMode = Literal["normal", "always"]


def _setting(default: Any, help: str, **limits: float) -> Any:
    """A dataclass field carrying its help text and range: the CLI builds flags from them."""
    metadata: dict[str, object] = {"help": help, **limits}
    if isinstance(default, Path):
        return field(default_factory=lambda: default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Every setting of a runtime, each with the default the server uses.

    Each field's metadata holds its ``help`` text and, for numbers, its
    ``min``/``max``: the command line's flags, their ``AURA_*`` variables and
    their range checks are generated from them.
    """

    max_concurrent_jobs: int = _setting(16, "jobs running at once; the rest wait as Queued", min=1)
    max_queued_jobs: int = _setting(
        1000, "jobs waiting beyond which POST /api/jobs answers 429", min=0
    )
    history_ttl: float = _setting(3600.0, "seconds a finished job's events stay replayable", min=0)
    max_history_events: int = _setting(
        10_000, "events kept per job (progress runs compacted) before the oldest go", min=2
    )
    subscriber_buffer: int = _setting(
        1024, "events a subscriber may have waiting before it is closed as overflowed", min=1
    )
    data_dir: Path = _setting(
        Path("aura-data"), "where the job store (jobs.sqlite3) and the artifacts live"
    )
    persist_jobs: bool = _setting(
        False, "keep jobs and their events in SQLite in the data dir (the server always does)"
    )
    fsync: FsyncMode = _setting(
        "normal",
        "'normal': a commit survives the process being killed; "
        "'always': it also survives power loss (slower)",
    )
    max_attempts: int = _setting(
        1,
        "how often a job may run: one interrupted by a restart runs again while attempts remain",
        min=1,
    )
    retention_days: float | None = _setting(
        None, "delete finished jobs (record, history, files) older than this many days", min=0
    )
    retention_jobs: int | None = _setting(
        None, "keep at most this many finished jobs; older ones are deleted", min=0
    )
    max_jobs_per_user: int | None = _setting(
        None, "jobs one user may have Queued or Running at once (beyond: 429)", min=1
    )
    max_job_seconds: float | None = _setting(
        None, "a job running longer than this ends Failed with code timeout", min=0
    )
    keep_failed_files: bool = _setting(
        False, "keep the files of failed and canceled jobs (removed by default)"
    )
    node_name: str | None = _setting(
        None, "the name this process gives itself in job snapshots (node)"
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
        if self.max_concurrent_jobs < 1:
            raise ValueError("max_concurrent_jobs must be at least 1")
        if self.max_queued_jobs < 0:
            raise ValueError("max_queued_jobs must not be negative")
        if self.history_ttl < 0:
            raise ValueError("history_ttl must not be negative")
        if self.max_history_events < 2:
            raise ValueError("max_history_events must be at least 2")
        if self.subscriber_buffer < 1:
            raise ValueError("subscriber_buffer must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.fsync not in ("normal", "always"):
            raise ValueError("fsync must be 'normal' or 'always'")
        if self.retention_days is not None and self.retention_days < 0:
            raise ValueError("retention_days must not be negative")
        if self.retention_jobs is not None and self.retention_jobs < 0:
            raise ValueError("retention_jobs must not be negative")
