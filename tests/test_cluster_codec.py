"""The Redis store's sans-IO parts, without Redis: key names, a commit as the commit
script's ARGV, and records, events and counts decoded from what Redis returns."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aura_actors.cluster import KeyLayout, owner_key
from aura_actors.cluster._codec import (
    RECORD_FIELDS,
    decode_counts,
    decode_job_event,
    decode_owner_event,
    decode_record,
    encode_commit,
)
from aura_actors.runtime import Commit, Event, EventId, EventType, JobRecord, JobStatus


def test_key_names_under_the_prefix() -> None:
    for prefix in ("aura", "aura:"):
        keys = KeyLayout(prefix)
        assert keys.root == "aura:"
        assert keys.job("j1") == "aura:job:j1"
        assert keys.events("j1") == "aura:events:j1"
        assert keys.logs("j1") == "aura:logs:j1"
        assert keys.owner_events(owner_key("alice")) == "aura:owner-events:u:alice"
        assert keys.owner_events(owner_key(None)) == "aura:owner-events:none"
        assert keys.index("all") == "aura:jobs:all"
        assert keys.index(owner_key("bob"), JobStatus.DONE) == "aura:jobs:u:bob:Done"
        assert (keys.meta, keys.seq, keys.counts) == ("aura:meta", "aura:seq", "aura:counts")
        assert (keys.ended, keys.ended_seq, keys.expiring) == (
            "aura:ended",
            "aura:ended-seq",
            "aura:expiring",
        )
    # A user called "all" or "none" cannot be mistaken for the special owner keys.
    assert owner_key("all") != "all" and owner_key("none") != "none"


def _snapshot(job_id: str, status: str) -> dict[str, object]:
    return {"id": job_id, "pipeline": "video", "status": status, "params": {"t": "ü"}}


def test_a_commit_as_argv() -> None:
    queued = Event(EventId(5, 0), EventType.JOB_STATUS, {"jobId": "a", "x": 1}, "a", "alice")
    running = Event(EventId(5, 1), EventType.JOB_STATUS, {"jobId": "b"}, "b", None)
    commit = Commit(
        created=[JobRecord(0, "alice", _snapshot("a", "Queued"))],
        snapshots={"b": _snapshot("b", "Running")},
        logs={"b": [{"message": "m"}]},
        events=[queued, running],
    )
    args = encode_commit(commit, prefix="p:", now=1.5, max_history_events=7)
    assert args[:4] == ["p:", "1.5", "7", "1"]
    assert args[4:9] == ["a", "u:alice", "alice", "Queued", "video"]
    assert json.loads(args[9]) == _snapshot("a", "Queued")
    assert args[10:13] == ["1", "b", "Running"]
    assert json.loads(args[13]) == _snapshot("b", "Running")
    assert args[14:17] == ["1", "b", '[{"message":"m"}]']
    assert args[17:24] == ["2", "5-0", "a", "u:alice", "alice", "job-status", queued.data_json]
    assert args[24:] == ["5-1", "b", "none", "", "job-status", running.data_json]
    assert encode_commit(Commit(), prefix="p:", now=2.0, max_history_events=7) == [
        "p:",
        "2.0",
        "7",
        "0",
        "0",
        "0",
        "0",
    ]


def test_only_stamped_job_events_are_encoded() -> None:
    unstamped = Commit(events=[Event(None, EventType.ERROR, {"code": "x"}, "a")])
    with pytest.raises(ValueError, match="stamped"):
        encode_commit(unstamped, prefix="p:", now=0.0, max_history_events=2)


@given(
    seq=st.integers(1, 2**40),
    owner=st.one_of(st.none(), st.text(max_size=8)),
    finished=st.one_of(st.none(), st.floats(0, 2e9)),
    expired=st.booleans(),
)
def test_records_decode_with_owner_and_expiry(
    seq: int, owner: str | None, finished: float | None, expired: bool
) -> None:
    snapshot = _snapshot("a", "Done")
    values = dict.fromkeys(RECORD_FIELDS)
    values.update(
        seq=str(seq),
        okey=owner_key(owner),
        owner=owner,
        snapshot=json.dumps(snapshot),
        expired="1" if expired else None,
        truncated="3-4",
        finished=None if finished is None else repr(finished),
    )
    cutoff = 1e9
    record = decode_record([values[name] for name in RECORD_FIELDS], cutoff)
    assert record is not None
    assert (record.seq, record.owner, record.data) == (seq, owner, snapshot)
    assert record.truncated_through == EventId(3, 4)
    assert record.history_expired == (expired or (finished is not None and finished < cutoff))


def test_a_missing_job_decodes_to_none() -> None:
    assert decode_record([None] * len(RECORD_FIELDS), 0.0) is None


def test_events_and_counts_decode() -> None:
    event = decode_job_event("7-2", {"t": "warning", "d": '{"jobId":"a"}', "o": "bob"}, "a")
    assert (event.id, event.type, event.job_id, event.owner) == (
        EventId(7, 2),
        EventType.WARNING,
        "a",
        "bob",
    )
    assert event.data == {"jobId": "a"}
    anonymous = decode_job_event("7-3", {"t": "warning", "d": "{}"}, "a")
    assert anonymous.owner is None
    mixed = decode_owner_event("8-0", {"j": "b", "t": "job-status", "d": "{}"}, "bob")
    assert (mixed.id, mixed.job_id, mixed.owner) == (EventId(8, 0), "b", "bob")
    counts = decode_counts({"Done\nvideo": "2", "Queued\nsyn\nthetic": "1", "Failed\nvideo": "0"})
    assert counts == {("Done", "video"): 2, ("Queued", "syn\nthetic"): 1}
