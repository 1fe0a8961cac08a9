"""What the Lua scripts take and give back, as plain values: sans-IO, tested without Redis.

A commit goes to ``lua/commit.lua`` as one flat ``ARGV`` list (no JSON to
decode in Lua, no escaping): the prefix, the wall-clock time, the per-job
history bound, then four sections, each its count followed by its items:

- created jobs, 6 values each: id, okey, owner, status, pipeline, snapshot JSON;
- snapshots, 3 each: job id, status, snapshot JSON;
- logs, 2 each: job id, log lines JSON;
- events, 6 each: id, job id, okey, owner, type, data JSON.

``owner`` is ``""`` when the okey is ``none``. With the dispatch queue (a
cluster), the committing node's name and the commit's token follow the
sections (a retry of a commit applied already is recognised by its token), then the
fences: their count and, 2 values each, job id and the claim attempt it is
written under (:attr:`Commit.fences`), then the admission limits (jobs queued in
the cluster, jobs one owner may have Queued or Running; empty for none). Created
``Queued`` jobs are then queued for the workers in the same step, and a job a
worker holds is written only by that worker under its claim attempt
(docs/cluster.md, fencing). Records come back as the values of :data:`RECORD_FIELDS`, in that order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..runtime import Commit, Event, EventId, EventType, JobRecord
from ._keys import NO_OWNER, owner_key

#: The fields of a job's hash that make its :class:`JobRecord`, in the order decoded.
RECORD_FIELDS = ("seq", "okey", "owner", "snapshot", "expired", "truncated", "finished")


def encode_commit(
    commit: Commit,
    *,
    prefix: str,
    now: float,
    max_history_events: int,
    node: str | None = None,
    max_queued: int | None = None,
    max_per_owner: int | None = None,
) -> list[str]:
    """The ``ARGV`` of ``lua/commit.lua`` for ``commit`` (see the module docstring);
    ``node`` is the committing node's name when the dispatch queue is in use, and
    ``max_queued`` / ``max_per_owner`` the cluster's admission limits (``None``: none)."""
    args = [prefix, repr(now), str(max_history_events), str(len(commit.created))]
    for record in commit.created:
        data = record.data
        args += [
            record.id,
            owner_key(record.owner),
            record.owner or "",
            str(data["status"]),
            str(data["pipeline"]),
            _snapshot_json(data),
        ]
    args.append(str(len(commit.snapshots)))
    for job_id, data in commit.snapshots.items():
        args += [job_id, str(data["status"]), _snapshot_json(data)]
    args.append(str(len(commit.logs)))
    for job_id, lines in commit.logs.items():
        args += [job_id, json.dumps(lines, separators=(",", ":"))]
    args.append(str(len(commit.events)))
    for event in commit.events:
        if event.id is None or event.job_id is None:
            raise ValueError(f"only a job's stamped events are stored, not {event!r}")
        args += [
            str(event.id),
            event.job_id,
            owner_key(event.owner),
            event.owner or "",
            event.type.value,
            event.data_json,
        ]
    if node is not None:
        args += [node, commit.token, str(len(commit.fences))]
        for job_id, attempt in commit.fences.items():
            args += [job_id, str(attempt)]
        args += ["" if limit is None else str(limit) for limit in (max_queued, max_per_owner)]
    return args


def _snapshot_json(data: Mapping[str, Any]) -> str:
    """A snapshot's JSON with ``lastEventId`` first (``{"lastEventId":"<id>",...``), so the
    commit script renames the id in place when it gives the commit's events new ids."""
    if "lastEventId" in data:
        data = {"lastEventId": data["lastEventId"], **data}
    return json.dumps(data, separators=(",", ":"))


def decode_commit_reply(reply: object) -> EventId | None:
    """The first new id the commit script gave a cluster commit's events, or ``None``
    when it kept their ids (``=``; and a commit without a node's ``1`` or ``0``)."""
    if isinstance(reply, str) and reply != "=":
        return EventId.parse(reply)
    return None


def decode_record(values: Sequence[str | None], expired_before: float) -> JobRecord | None:
    """The record of a job's :data:`RECORD_FIELDS` values, or ``None`` for a missing job.

    A history whose job ended before ``expired_before`` reads as expired at
    once, whenever upkeep deletes it (as the embedded store does).
    """
    seq, okey, owner, snapshot, expired, truncated, finished = values
    if seq is None or snapshot is None:
        return None
    gone = expired == "1" or (finished is not None and float(finished) < expired_before)
    return JobRecord(
        int(seq),
        None if okey == NO_OWNER else owner,
        json.loads(snapshot),
        history_expired=gone,
        truncated_through=None if truncated is None else EventId.parse(truncated),
    )


def decode_job_event(entry_id: str | bytes, fields: Mapping[Any, Any], job_id: str) -> Event:
    """An event of a job's stream (fields ``t``, ``d``, and ``o`` when it has an owner)."""
    return Event(
        EventId.parse(str(entry_id)),
        EventType(fields["t"]),
        None,
        job_id,
        fields.get("o"),
        json_text=fields["d"],
    )


def decode_owner_event(
    entry_id: str | bytes, fields: Mapping[Any, Any], owner: str | None
) -> Event:
    """An event of an owner's stream (fields ``j``, ``t``, ``d``)."""
    return Event(
        EventId.parse(str(entry_id)),
        EventType(fields["t"]),
        None,
        fields["j"],
        owner,
        json_text=fields["d"],
    )


def decode_counts(raw: dict[str, str]) -> dict[tuple[str, str], int]:
    """``{(status, pipeline): count}`` of the counts hash (``"<status>\\n<pipeline>"``)."""
    counts: dict[tuple[str, str], int] = {}
    for name, value in raw.items():
        status, pipeline = name.split("\n", 1)
        if int(value) > 0:
            counts[(status, pipeline)] = int(value)
    return counts
