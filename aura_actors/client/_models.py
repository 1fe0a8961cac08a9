"""The REST answers, as the protocol's models: snapshots, pages, logs, artifacts, errors, health."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..protocol import (
    ArtifactInfo,
    ErrorDetail,
    Health,
    JobError,
    JobList,
    JobLogs,
    JobSnapshot,
    JobStatus,
    LogLine,
)
from ._errors import ProtocolError

__all__ = [
    "Artifact",
    "ArtifactInfo",
    "ErrorDetail",
    "Health",
    "JobError",
    "JobLogs",
    "JobPage",
    "JobSnapshot",
    "JobStatus",
    "LogLine",
    "parse_answer",
]

#: A file a job produced (the protocol's :class:`~aura_actors.protocol.ArtifactInfo`).
Artifact = ArtifactInfo
#: One page of ``GET /api/jobs`` (the protocol's :class:`~aura_actors.protocol.JobList`).
JobPage = JobList

_Model = TypeVar("_Model", bound=BaseModel)


def parse_answer(model: type[_Model], body: Any, what: str) -> _Model:
    """Validate a decoded JSON answer into ``model``; :class:`ProtocolError` if it does not fit."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ProtocolError(f"{what}: the answer does not fit the protocol: {exc}") from None
