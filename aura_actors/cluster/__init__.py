"""The cluster side of the storage seam: jobs, histories and logs in Redis.

Imported only when ``--redis`` is given (``coredis`` is loaded with it), so the
single-process default needs nothing but its own dependencies. Today this is
:class:`RedisStorage`, the :class:`~aura_actors.runtime.JobStorage` of one
process on Redis, and the building blocks of a cluster's nodes: the dispatch
queue (:class:`DispatchQueue`), the per-node live feed (``_live.LiveFeed``), a
worker's cancel listener (``_cancels.CancelListener``), its heartbeat
(:class:`Presence`), its reaper of dead workers' jobs (:class:`Reaper`) and the
hand-back of the jobs it stops (:func:`hand_back`), put together as a runtime's
node of the cluster (:class:`ClusterNode`: its job source, its feed and, but on
an API node, its worker; docs/cluster.md).
"""

from ._dispatch import Claim, DispatchQueue, HandBack
from ._errors import AdmissionRefused, CommitRefused, Fenced, JobClaimed
from ._held import WORKER_LOST, Handed, hand_back, held_job, runs_again
from ._keys import KeyLayout, owner_key
from ._node import ClusterJobs, ClusterNode, open_cluster_node
from ._presence import Presence, live_workers
from ._reaper import Reaped, Reaper
from ._redis_store import RedisStorage, open_redis_storage

__all__ = [
    "WORKER_LOST",
    "AdmissionRefused",
    "Claim",
    "ClusterJobs",
    "ClusterNode",
    "CommitRefused",
    "DispatchQueue",
    "Fenced",
    "HandBack",
    "Handed",
    "JobClaimed",
    "KeyLayout",
    "Presence",
    "Reaped",
    "Reaper",
    "RedisStorage",
    "hand_back",
    "held_job",
    "live_workers",
    "open_cluster_node",
    "open_redis_storage",
    "owner_key",
    "runs_again",
]
