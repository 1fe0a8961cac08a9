"""The cluster side of the storage seam: jobs, histories and logs in Redis.

Imported only when ``--redis`` is given (``coredis`` is loaded with it), so the
single-process default needs nothing but its own dependencies. Today this is
:class:`RedisStorage`, the :class:`~aura_actors.runtime.JobStorage` of one
process on Redis, and the building blocks of a cluster's nodes: the dispatch
queue (:class:`DispatchQueue`), the per-node live feed (``_live.LiveFeed``)
and a worker's cancel listener (``_cancels.CancelListener``), put together as
a runtime's node of the cluster (:class:`ClusterNode`: its job source, its
feed and, but on an API node, its worker; docs/cluster.md).
"""

from ._dispatch import Claim, DispatchQueue
from ._errors import CommitRefused, JobClaimed
from ._keys import KeyLayout, owner_key
from ._node import ClusterJobs, ClusterNode, open_cluster_node
from ._redis_store import RedisStorage, open_redis_storage

__all__ = [
    "Claim",
    "ClusterJobs",
    "ClusterNode",
    "CommitRefused",
    "DispatchQueue",
    "JobClaimed",
    "KeyLayout",
    "RedisStorage",
    "open_cluster_node",
    "open_redis_storage",
    "owner_key",
]
