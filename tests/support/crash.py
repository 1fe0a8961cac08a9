"""The crash suite's machinery: a random workload against a server process, SIGKILL at a
random moment, and the checks of contract section 7 on what the process left behind.

A :class:`Ledger` remembers, across every server of one data dir, what clients were
told: each job a ``POST`` answered 202 for, each event a stream delivered. After a
kill, :func:`read_store` reads the database the dead process left (read-only, before
anything restarts) and :func:`check_left_behind` holds it to what clients were told;
:func:`check_restart` then holds the next server to it: same histories with the same
ids, exact resumes, greater ids, unfinished jobs taken back.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coredis
import httpx
import httpx_sse
import trio

from .servers import ServerProcess
from .streams import Ev, assert_strictly_increasing, open_sse, read_sse

Id = tuple[int, int]
TERMINAL_STATUS = {"job-completed": "Done", "job-failed": "Failed", "job-cancelled": "Canceled"}
#: What a client gets when the server dies under it.
GONE = (httpx.HTTPError, httpx_sse.SSEError, trio.BrokenResourceError)


@dataclass
class Ledger:
    """What clients were told, across every server on one data dir."""

    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)
    trial_of: dict[str, int] = field(default_factory=dict)
    #: Every event any stream delivered, per job (several streams may repeat one).
    seen: dict[str, list[Ev]] = field(default_factory=dict)
    #: The last id each job's stream delivered before the kill.
    last_seen: dict[str, str] = field(default_factory=dict)
    #: The last id the all-jobs stream delivered before the kill.
    all_stream_last: str | None = None
    #: The greatest id that existed before the current server started.
    newest: Id = (0, 0)
    #: What the kills left: jobs found Queued / Running, terminal events checked.
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("Queued", "Running"), 0))
    terminals_checked: int = 0

    def saw(self, job_id: str, event: Ev) -> None:
        self.seen.setdefault(job_id, []).append(event)
        if event.id is not None:
            self.last_seen[job_id] = event.id


@dataclass
class Stored:
    """What the dead process left in its database."""

    jobs: dict[str, dict[str, Any]]
    events: dict[str, list[Ev]]
    last_id: Id | None

    def events_after(self, after: Id) -> list[Ev]:
        merged = sorted((e for events in self.events.values() for e in events), key=_key)
        return [event for event in merged if _key(event) > after]


def _key(event: Ev) -> Id:
    return event.key


def read_store(data_dir: Path) -> Stored:
    """Read ``jobs.sqlite3`` read-only (no checkpoint, nothing changed)."""
    uri = f"file:{data_dir / 'jobs.sqlite3'}?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        jobs = {
            job_id: json.loads(snapshot)
            for job_id, snapshot in connection.execute("SELECT id, snapshot FROM jobs")
        }
        events: dict[str, list[Ev]] = {}
        for millis, counter, job_id, kind, data in connection.execute(
            "SELECT millis, counter, job_id, type, data FROM events ORDER BY millis, counter"
        ):
            events.setdefault(job_id, []).append(Ev(f"{millis}-{counter}", kind, json.loads(data)))
        row = connection.execute("SELECT value FROM meta WHERE key = 'last_event_id'").fetchone()
    finally:
        connection.close()
    last_id = None if row is None else _parse(row[0])
    return Stored(jobs, events, last_id)


async def read_redis_store(url: str, prefix: str) -> Stored:
    """Read what a dead process left in Redis under ``prefix`` (nothing changed)."""
    jobs: dict[str, dict[str, Any]] = {}
    events: dict[str, list[Ev]] = {}
    async with coredis.Redis.from_url(url, decode_responses=True) as client:
        async for key in client.scan_iter(match=f"{prefix}job:*"):
            job_id = key.removeprefix(f"{prefix}job:")
            snapshot = await client.hget(key, "snapshot")
            assert snapshot is not None
            jobs[job_id] = json.loads(snapshot)
            for entry in await client.xrange(f"{prefix}events:{job_id}", "-", "+"):
                fields = entry.field_values
                event = Ev(str(entry.identifier), fields["t"], json.loads(fields["d"]))
                events.setdefault(job_id, []).append(event)
        last = await client.hget(f"{prefix}meta", "last_event_id")
    return Stored(jobs, events, None if last is None else _parse(last))


def _parse(text: str) -> Id:
    millis, counter = text.split("-")
    return int(millis), int(counter)


# -- the workload ------------------------------------------------------------------------------


def random_job(rng: random.Random) -> dict[str, Any]:
    """A request body: mostly short synthetic jobs, some failing or warning, a few videos."""
    if rng.random() < 0.15:
        return {
            "pipeline": "video",
            "params": {"topic": "Crash", "durationSeconds": 5, "speed": rng.choice([300, 1000])},
        }
    stages, ticks = rng.randint(1, 3), rng.randint(1, 20)
    params: dict[str, Any] = {
        "stages": stages,
        "ticks": ticks,
        "tickSeconds": rng.choice([0, 0.002, 0.01, 0.03]),
    }
    point = {"stage": rng.randrange(stages), "tick": rng.randrange(ticks)}
    if rng.random() < 0.15:
        params["failAt"] = point
    elif rng.random() < 0.2:
        params["warnAt"] = point
    return {"pipeline": "synthetic", "params": params}


class Killer:
    """SIGKILLs the server at the ``threshold``-th moment of ``kind`` a client notices."""

    KINDS = ("accepted", "step-progress", "terminal", "timer")

    def __init__(self, server: ServerProcess, rng: random.Random) -> None:
        self.server = server
        self.kind = rng.choice(self.KINDS)
        self.threshold = {
            "accepted": rng.randint(1, 6),
            "step-progress": rng.randint(1, 40),
            "terminal": rng.randint(1, 4),
            "timer": 0,
        }[self.kind]
        self.delay = rng.uniform(0, 1.0)
        self.count = 0
        self.killed = trio.Event()

    def __str__(self) -> str:
        if self.kind == "timer":
            return f"kill after {self.delay:.3f} s"
        return f"kill at {self.kind} #{self.threshold}"

    def note(self, kind: str) -> None:
        if kind == self.kind and not self.killed.is_set():
            self.count += 1
            if self.count >= self.threshold:
                self.kill()

    def kill(self) -> None:
        if not self.killed.is_set():
            self.server.send_signal(signal.SIGKILL)
            self.killed.set()


async def run_workload(
    server: ServerProcess, ledger: Ledger, rng: random.Random, trial: int
) -> Killer:
    """Submit and follow random jobs until the killer fires (or, all done, kill anyway)."""
    killer = Killer(server, rng)
    bodies = [random_job(rng) for _ in range(rng.randint(3, 8))]
    limits = httpx.Timeout(30.0)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=limits) as client,
        trio.open_nursery() as outer,
    ):
        outer.start_soon(_follow_all, client, ledger)
        if killer.kind == "timer":
            outer.start_soon(_kill_later, killer)
        async with trio.open_nursery() as nursery:
            for share in (bodies[::2], bodies[1::2]):
                nursery.start_soon(_submit, client, ledger, killer, share, trial, nursery, rng)
        killer.kill()  # every job ended before the moment came: kill now, idle
    return killer


async def _kill_later(killer: Killer) -> None:
    await trio.sleep(killer.delay)
    killer.kill()


async def _submit(
    client: httpx.AsyncClient,
    ledger: Ledger,
    killer: Killer,
    bodies: list[dict[str, Any]],
    trial: int,
    nursery: trio.Nursery,
    rng: random.Random,
) -> None:
    for body in bodies:
        if killer.killed.is_set():
            return
        try:
            response = await client.post("/api/jobs", json=body)
        except GONE:
            return  # in flight when the server died: never acknowledged
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        ledger.acknowledged[job_id] = body
        ledger.trial_of[job_id] = trial
        killer.note("accepted")
        nursery.start_soon(_follow, client, ledger, killer, job_id, rng.random() < 0.15)


async def _follow(
    client: httpx.AsyncClient, ledger: Ledger, killer: Killer, job_id: str, cancel: bool
) -> None:
    received: list[Ev] = []
    try:
        async with open_sse(client, f"/api/jobs/{job_id}/events") as stream:
            async for event in stream.events:
                received.append(event)
                ledger.saw(job_id, event)
                killer.note("terminal" if event.is_terminal else event.event)
                if cancel and event.event == "step-progress":
                    cancel = False
                    await client.post(f"/api/jobs/{job_id}/cancel")
    except GONE:
        pass
    assert_strictly_increasing(received)


async def _follow_all(client: httpx.AsyncClient, ledger: Ledger) -> None:
    received: list[Ev] = []
    headers = {} if ledger.all_stream_last is None else {"Last-Event-ID": ledger.all_stream_last}
    try:
        async with open_sse(client, "/api/events", headers=headers) as stream:
            async for event in stream.events:
                received.append(event)
                if event.id is not None:
                    ledger.all_stream_last = event.id
    except GONE:
        pass
    assert_strictly_increasing(received)


# -- the checks ------------------------------------------------------------------------------------


def check_left_behind(ledger: Ledger, stored: Stored) -> None:
    """What the killed process left holds everything clients were told."""
    missing = set(ledger.acknowledged) - set(stored.jobs)
    assert not missing, f"202'd jobs missing after the kill: {sorted(missing)}"
    for job_id, seen in ledger.seen.items():
        events = {event.id: event for event in stored.events.get(job_id, [])}
        for event in seen:
            assert event.id is not None
            assert stored.last_id is not None and event.key <= stored.last_id, (
                f"a client saw {event.id}, newer than every stored id"
            )
            if event.event != "step-progress":  # progress may be compacted away
                assert events.get(event.id) == event, f"{job_id}: seen {event} is not stored"
            if event.is_terminal:
                _check_terminal(stored.jobs[job_id], event)
                ledger.terminals_checked += 1
    ledger.newest = max(
        [ledger.newest, *([stored.last_id] if stored.last_id else [])],
    )


def _check_terminal(snapshot: dict[str, Any], event: Ev) -> None:
    assert snapshot["status"] == TERMINAL_STATUS[event.event], (snapshot, event)
    assert snapshot["lastEventId"] == event.id
    if event.event == "job-completed":
        assert snapshot["artifacts"] == event.data["artifacts"]
    if event.event == "job-failed":
        assert snapshot["error"]["errors"] == event.data["errors"]


async def check_restart(
    client: httpx.AsyncClient, ledger: Ledger, stored: Stored, rng: random.Random, trial: int
) -> None:
    """The restarted server against what the killed one (of ``trial``) left behind."""
    listed = await _list_all(client)
    assert set(ledger.acknowledged) <= set(listed)
    for job_id, snapshot in stored.jobs.items():
        if snapshot["status"] in TERMINAL_STATUS.values():
            assert listed[job_id] == snapshot, "a finished job changed across the restart"
    if ledger.all_stream_last is not None:
        await _check_all_stream_resume(client, stored, ledger.all_stream_last)
    unfinished = {j for j, s in stored.jobs.items() if s["status"] in ("Queued", "Running")}
    for job_id in unfinished:
        ledger.found[stored.jobs[job_id]["status"]] += 1
    latest = {j for j, t in ledger.trial_of.items() if t == trial}
    sample = set(rng.sample(sorted(stored.jobs), min(2, len(stored.jobs))))
    for job_id in sorted(unfinished | latest | sample):
        with trio.fail_after(60):
            await _check_job(client, ledger, stored, job_id, every_id=job_id in sample)


async def _list_all(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/jobs", params=params)).json()
        jobs.update((job["id"], job) for job in page["jobs"])
        cursor = page["nextCursor"]
        if cursor is None:
            return jobs


async def _check_all_stream_resume(client: httpx.AsyncClient, stored: Stored, last: str) -> None:
    expected = stored.events_after(_parse(last))
    got: list[Ev] = []
    with trio.fail_after(30):
        async with open_sse(client, "/api/events", headers={"Last-Event-ID": last}) as stream:
            while len(got) < len(expected):
                got.append(await stream.next())
    assert [e.triple() for e in got] == [e.triple() for e in expected], "/api/events resume"


async def _check_job(
    client: httpx.AsyncClient, ledger: Ledger, stored: Stored, job_id: str, *, every_id: bool
) -> None:
    history = stored.events.get(job_id, [])
    path = f"/api/jobs/{job_id}/events"
    seen_last = ledger.last_seen.get(job_id)  # where a client that saw the kill resumes
    events = await read_sse(client, path)  # the stored history, then live to the end
    for event in events:
        ledger.saw(job_id, event)
    assert_strictly_increasing(events)
    assert _triples(events[: len(history)]) == _triples(history), "replay differs after restart"
    new = events[len(history) :]
    assert all(event.key > ledger.newest for event in new), "an id not after the stored ones"
    status = stored.jobs[job_id]["status"]
    if status == "Running":  # --max-attempts 1: it ends Failed, interrupted
        assert [e.event for e in new] == ["job-status", "job-failed"], new
        assert [error["code"] for error in new[1].data["errors"]] == ["interrupted"]
    elif status == "Queued":  # it runs now
        assert new[0].event == "job-status" and new[0].data["status"] == "Running", new[:1]
        assert new[-1].is_terminal
    else:
        assert new == [], "a finished job got new events"
    # The job has ended: its stored history is what every resume now replays from.
    final = await read_sse(client, path)
    assert _triples(_others(final)) == _triples(_others(events))
    assert final[-1] == events[-1]
    resume_from = [] if seen_last is None else [seen_last]
    if every_id:
        resume_from += [event.id for event in events if event.id is not None]
    for last in resume_from:
        await _check_resume(client, path, final, last)


def _others(events: Iterable[Ev]) -> list[Ev]:
    return [event for event in events if event.event != "step-progress"]


async def _check_resume(client: httpx.AsyncClient, path: str, history: list[Ev], last: str) -> None:
    expected = [event for event in history if event.key > _parse(last)]
    if not expected:
        response = await client.get(path, headers={"Last-Event-ID": last})
        assert response.status_code == 204, (last, response.status_code)
        return
    resumed = await read_sse(client, path, headers={"Last-Event-ID": last})
    assert _triples(resumed) == _triples(expected), f"resume after {last} is not exact"


def _triples(events: Iterable[Ev]) -> list[tuple[str | None, str, str]]:
    return [event.triple() for event in events]
