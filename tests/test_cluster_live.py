"""The live feed against real Redis: events committed by one node reach another
node's subscriptions through its one pub/sub connection, with exact ids.

The jobs here report no progress: a run of ``step-progress`` keeps only its
newest event in storage, so which of them a reader sees depends on timing.
``w-1`` (a worker's store) commits; ``api-1``'s :class:`LiveFeed` feeds its hub,
where runtime ``Subscription``s follow jobs and owners as the web layer's do.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import coredis
import trio
from support.cluster import api_store
from support.redis import open_store, private_redis
from support.store_script import Script, batches, events_of, run_script

from aura_actors.cluster import RedisStorage
from aura_actors.cluster._live import LiveFeed
from aura_actors.runtime import Commit, Event, EventId
from aura_actors.runtime._hub import Hub
from aura_actors.runtime._subscription import Subscription


def _job_subscription(
    store: RedisStorage, hub: Hub, job_id: str, after: EventId | None
) -> Subscription:
    subscription = Subscription(
        max_buffer=1000, fetch=partial(store.job_events, job_id), after=after, job_id=job_id
    )
    hub.follow_job(job_id, subscription)
    return subscription


def _owner_subscription(
    store: RedisStorage, hub: Hub, owner: str, after: EventId | None
) -> Subscription:
    fetch = None
    if after is not None:
        start = after

        async def fetch_owner(last: EventId | None, limit: int) -> list[Event]:
            return await store.owner_events(owner, last or start, limit)

        fetch = fetch_owner
    subscription = Subscription(max_buffer=1000, fetch=fetch, after=after)
    hub.follow_owner(owner, subscription)
    return subscription


async def _ids(subscription: Subscription, count: int) -> list[EventId | None]:
    got: list[EventId | None] = []
    with trio.fail_after(10):
        while len(got) < count:
            got += [event.id for event in await subscription.receive_batch()]
    return got


async def _commit_all(store: RedisStorage, commits: list[Commit]) -> None:
    for commit in commits:
        await store.commit(commit)


def _worker_store(
    api: RedisStorage, prefix: str, tmp_path: Path, node: str | None = "w-1"
) -> RedisStorage:
    return RedisStorage(
        api.client,
        prefix=prefix,
        node=node,
        history_ttl=3600.0,
        max_history_events=10_000,
        artifacts_dir=tmp_path,
    )


async def test_events_committed_elsewhere_reach_job_and_owner_subscribers_exactly(
    tmp_path: Path, prefix: str
) -> None:
    script = Script()
    commits = run_script(script.life("a", "alice", runs=[0, 0]), script.life("b", "bob", runs=[0]))
    a_ids = [e.id for e in events_of(commits, "a")]
    async with api_store(tmp_path, prefix) as (api, nursery):
        hub = Hub()
        feed = LiveFeed(api, hub)
        await nursery.start(feed.run)
        worker = _worker_store(api, prefix, tmp_path)
        await worker.commit(commits[0])  # a's Queued record
        whole = _job_subscription(api, hub, "a", None)
        live_only = _owner_subscription(api, hub, "alice", None)
        await _commit_all(worker, commits[1:])

        assert await _ids(whole, len(a_ids)) == a_ids
        assert await whole.receive_batch() == []  # ended after its terminal event
        # The owner's live-only reader sees alice's events committed after it began (and
        # maybe the one just before, if the feed handled its message after it began).
        seen = await _ids(live_only, len(a_ids) - 1)
        if seen[0] == a_ids[0]:
            seen = seen[1:]
            seen += await _ids(live_only, len(a_ids) - 1 - len(seen))
        assert seen == a_ids[1:]
        # A resume in the middle, once everything is stored: exact, nothing twice.
        resumed = _job_subscription(api, hub, "a", a_ids[3])
        assert await _ids(resumed, len(a_ids) - 4) == a_ids[4:]


async def test_after_the_feed_was_away_subscribers_get_what_was_committed_meanwhile(
    tmp_path: Path, prefix: str
) -> None:
    script = Script()
    commits = run_script(script.life("a", "alice", runs=[0, 0, 0]))
    ids = [e.id for e in events_of(commits, "a")]
    async with open_store(tmp_path, prefix, node="api-1") as api:
        hub = Hub()
        worker = _worker_store(api, prefix, tmp_path)
        await _commit_all(worker, commits[:3])
        job = _job_subscription(api, hub, "a", ids[0])
        owner = _owner_subscription(api, hub, "alice", ids[1])
        assert await _ids(job, 2) == ids[1:3]
        assert await _ids(owner, 1) == ids[2:3]
        # No feed runs (its connection is down): these commits' messages are lost.
        await _commit_all(worker, commits[3:8])
        async with trio.open_nursery() as nursery:
            feed = LiveFeed(api, hub)
            await nursery.start(feed.run)  # connected: it reads again from their last ids
            assert await _ids(job, 5) == ids[3:8]
            assert await _ids(owner, 5) == ids[3:8]
            await _commit_all(worker, commits[8:])
            assert await _ids(job, len(ids) - 8) == ids[8:]
            assert await _ids(owner, len(ids) - 8) == ids[8:]
            nursery.cancel_scope.cancel()


async def test_an_owners_events_reach_its_subscribers_in_id_order_whichever_node_wrote_them(
    tmp_path: Path, prefix: str
) -> None:
    """Several nodes write one owner's stream. An event this node commits (its broadcaster
    offers it to the hub at once) must not overtake older events of another node that
    the feed has not read yet: an owner's subscriptions would drop those as passed. So
    they get every event from the feed, in the stream's order, the node's own too."""
    script = Script()
    older = run_script(script.life("a", "alice", runs=[0]))[:4]  # the worker's
    newer = run_script(script.life("b", "alice", runs=[0]))[:1]  # this node's, after them
    async with open_store(tmp_path, prefix, node="api-1") as api:
        hub = Hub()
        worker = _worker_store(api, prefix, tmp_path)
        owner = _owner_subscription(api, hub, "alice", None)
        async with trio.open_nursery() as nursery:
            await nursery.start(LiveFeed(api, hub).run)
            await worker.commit(older[0])
            assert await _ids(owner, 1) == [older[0].events[0].id]
            nursery.cancel_scope.cancel()
        # The feed is behind (here: away) while the worker commits and this node commits
        # a newer event and offers it to the hub, as its broadcaster does.
        await _commit_all(worker, older[1:])
        await api.commit(newer[0])
        hub.publish_run(list(newer[0].events))
        async with trio.open_nursery() as nursery:
            await nursery.start(LiveFeed(api, hub).run)
            expected = [e.id for e in events_of(older[1:] + newer, "a") + newer[0].events]
            assert await _ids(owner, len(expected)) == expected
            nursery.cancel_scope.cancel()


async def test_a_killed_pubsub_connection_is_made_again(tmp_path: Path) -> None:
    script = Script()
    commits = run_script(script.life("a", None, runs=[0]))
    ids = [e.id for e in events_of(commits, "a")]
    async with (
        private_redis(tmp_path / "redis") as redis,
        open_store(tmp_path, "live:", url=redis.url, node="api-1") as api,
        trio.open_nursery() as nursery,
    ):
        hub = Hub()
        feed = LiveFeed(api, hub)
        await nursery.start(feed.run)
        worker = _worker_store(api, "live:", tmp_path)
        await worker.commit(commits[0])
        job = _job_subscription(api, hub, "a", None)
        await worker.commit(commits[1])
        assert await _ids(job, 2) == ids[:2]

        async with coredis.Redis.from_url(redis.url) as admin:
            await admin.client_kill(type_=coredis.PureToken.PUBSUB)
        await _commit_all(worker, commits[2:])
        with trio.fail_after(20):
            await feed.wait_connections(2)
        assert await _ids(job, len(ids) - 2) == ids[2:]
        nursery.cancel_scope.cancel()


async def test_a_commit_of_several_jobs_reaches_an_owner_in_id_order(
    tmp_path: Path, prefix: str
) -> None:
    """Events of two jobs interleaved in one commit (as a worker batches jobs that run at
    once): the owner's subscription gets them all in id order (grouped by job, those of
    one job would pass the other's, which the subscription would then drop as passed),
    and each job's subscription gets its own."""
    script = Script()
    commits = run_script(script.life("a", "alice", runs=[0]), script.life("b", "alice", runs=[0]))
    ids = [e.id for commit in commits for e in commit.events]
    a_ids = [e.id for e in events_of(commits, "a")]
    (created,) = batches(commits[:2], 2)  # both jobs' Queued records
    (rest,) = batches(commits[2:], len(commits))  # a, b, a, b, ...: one commit
    async with api_store(tmp_path, prefix) as (api, nursery):
        hub = Hub()
        await nursery.start(LiveFeed(api, hub).run)
        worker = _worker_store(api, prefix, tmp_path)
        owner = _owner_subscription(api, hub, "alice", None)  # live only: no replay
        await worker.commit(created)
        job_a = _job_subscription(api, hub, "a", a_ids[0])
        await worker.commit(rest)

        assert await _ids(owner, len(ids)) == ids
        assert await _ids(job_a, len(a_ids) - 1) == a_ids[1:]


async def test_a_message_the_feed_cannot_read_is_read_from_the_streams(
    tmp_path: Path, prefix: str
) -> None:
    """A message that is not a commit's (another version's node, say) is taken as lost:
    the feed logs it and reads every followed stream again, as after a reconnect."""
    script = Script()
    commits = run_script(script.life("a", "alice", runs=[0]))
    ids = [e.id for e in events_of(commits, "a")]
    async with api_store(tmp_path, prefix) as (api, nursery):
        hub = Hub()
        await nursery.start(LiveFeed(api, hub).run)
        owner = _owner_subscription(api, hub, "alice", None)  # live only: the feed alone
        await _worker_store(api, prefix, tmp_path).commit(commits[0])
        assert await _ids(owner, 1) == ids[:1]
        # Stored with no message (a store without a node publishes none)...
        silent = _worker_store(api, prefix, tmp_path, node=None)
        for commit in commits[1:3]:
            await silent.commit(commit)
        # ... and then a message the feed cannot read.
        await api.client.publish(api.keys.live_channel, "w-1\na 1-0 2-0 u:alice")
        assert await _ids(owner, 2) == ids[1:3]
