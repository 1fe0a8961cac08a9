"""The contract's tables, derived from :mod:`aura_actors.protocol` so there is one definition.

Every test that checks payload shapes uses these; the protocol models are
where a field is added or renamed.
"""

from __future__ import annotations

from pydantic import BaseModel

from aura_actors.protocol import EVENT_DATA_MODELS, EventType, JobSnapshot


def wire_keys(model: type[BaseModel]) -> frozenset[str]:
    """The camelCase keys ``model`` has on the wire."""
    return frozenset(info.alias or name for name, info in model.model_fields.items())


#: Snapshot keys of the contract that the server does not write yet; they come with
#: the runtime's rewrite (retries and the cluster). Empty this set once it writes them.
PENDING_SNAPSHOT_KEYS = frozenset({"attempt", "retryOf", "node"})

#: Keys of a job snapshot (as the server writes it today).
SNAPSHOT_KEYS = wire_keys(JobSnapshot) - PENDING_SNAPSHOT_KEYS

#: Keys of each job event's ``data`` besides ``jobId``, which every one carries.
EVENT_DATA_KEYS: dict[str, frozenset[str]] = {
    event_type.value: wire_keys(model) - {"jobId"}
    for event_type, model in EVENT_DATA_MODELS.items()
    if event_type is not EventType.ERROR
}


#: A synthetic job that finishes at once: two stages of three ticks.
QUICK_JOB = {"pipeline": "synthetic", "params": {"stages": 2, "ticks": 3, "tickSeconds": 0}}
#: A synthetic job that waits (one ten-minute tick) until cancelled.
WAITING_JOB = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}
