"""Typed views of the API's JSON: job snapshots, pages, artifacts, errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..runtime import JobStatus
from ._errors import ProtocolError

__all__ = ["Artifact", "ErrorDetail", "JobError", "JobPage", "JobSnapshot", "JobStatus"]


# -- tolerant readers: a missing key is a default, a wrong type a ProtocolError ----------


def _get(data: Mapping[str, Any], key: str, kinds: tuple[type, ...], default: Any) -> Any:
    value = data.get(key)
    if value is None:
        return default
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise ProtocolError(f"field {key!r} should be {kinds[0].__name__}, got {value!r}")
    return value


def opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value: str | None = _get(data, key, (str,), None)
    return value


def req_str(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value: str = _get(data, key, (str,), default)
    return value


def opt_float(data: Mapping[str, Any], key: str) -> float | None:
    value = _get(data, key, (float, int), None)
    return None if value is None else float(value)


def req_float(data: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    return float(_get(data, key, (float, int), default))


def opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value: int | None = _get(data, key, (int,), None)
    return value


def req_int(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    value: int = _get(data, key, (int,), default)
    return value


def opt_status(data: Mapping[str, Any], key: str) -> JobStatus | None:
    value = opt_str(data, key)
    if value is None:
        return None
    try:
        return JobStatus(value)
    except ValueError:
        raise ProtocolError(f"unknown job status {value!r} in field {key!r}") from None


def objects(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ProtocolError(f"field {key!r} should be a list of objects, got {value!r}")
    return value


def _opt_time(data: Mapping[str, Any], key: str) -> datetime | None:
    text = opt_str(data, key)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ProtocolError(f"field {key!r} is not an ISO 8601 time: {text!r}") from None


# -- the models ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file a job produced: ``path`` is relative to the server's data dir.

    Download it at ``GET /api/jobs/{id}/artifacts/{name}``.
    """

    name: str
    path: str
    size_bytes: int
    mime_type: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Artifact:
        return cls(
            name=req_str(data, "name"),
            path=req_str(data, "path"),
            size_bytes=req_int(data, "sizeBytes"),
            mime_type=req_str(data, "mimeType", "application/octet-stream"),
        )


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One reason a job failed, with what to do about it."""

    code: str
    message: str
    remediation: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorDetail:
        return cls(
            code=req_str(data, "code"),
            message=req_str(data, "message"),
            remediation=req_str(data, "remediation"),
        )


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job failed: a summary and the individual errors."""

    message: str
    errors: tuple[ErrorDetail, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobError:
        return cls(
            message=req_str(data, "message"),
            errors=tuple(ErrorDetail.from_json(item) for item in objects(data, "errors")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSnapshot:
    """A job as ``GET /api/jobs/{id}`` shows it (camelCase fields in snake_case)."""

    id: str
    pipeline: str
    params: Mapping[str, Any] = field(hash=False)
    status: JobStatus
    stage: str | None
    progress_pct: float
    message: str
    eta_seconds: float | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    artifacts: tuple[Artifact, ...]
    error: JobError | None
    last_event_id: str | None
    #: The JSON object as received.
    raw: Mapping[str, Any] = field(hash=False, compare=False, repr=False)

    @property
    def is_terminal(self) -> bool:
        """Whether the job ended (``Done``, ``Failed`` or ``Canceled``) and will not change."""
        return self.status.is_terminal

    @classmethod
    def from_json(cls, data: Any) -> JobSnapshot:
        """Build from the snapshot JSON; raise :class:`ProtocolError` if it is not one."""
        if not isinstance(data, dict):
            raise ProtocolError(f"a job snapshot should be an object, got {data!r}")
        status = opt_status(data, "status")
        if status is None:
            raise ProtocolError("job snapshot without a status")
        error = data.get("error")
        if error is not None and not isinstance(error, dict):
            raise ProtocolError(f"field 'error' should be an object, got {error!r}")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise ProtocolError(f"field 'params' should be an object, got {params!r}")
        return cls(
            id=req_str(data, "id"),
            pipeline=req_str(data, "pipeline"),
            params=params,
            status=status,
            stage=opt_str(data, "stage"),
            progress_pct=req_float(data, "progressPct"),
            message=req_str(data, "message"),
            eta_seconds=opt_float(data, "etaSeconds"),
            created_at=_opt_time(data, "createdAt"),
            started_at=_opt_time(data, "startedAt"),
            finished_at=_opt_time(data, "finishedAt"),
            artifacts=tuple(Artifact.from_json(item) for item in objects(data, "artifacts")),
            error=None if error is None else JobError.from_json(error),
            last_event_id=opt_str(data, "lastEventId"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of ``GET /api/jobs``: newest first; ``next_cursor`` is ``None`` on the last."""

    jobs: tuple[JobSnapshot, ...]
    next_cursor: str | None
