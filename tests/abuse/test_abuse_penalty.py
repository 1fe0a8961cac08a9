"""Abusive clients pay, not everyone (issue 11): the penalty box.

From outside, against a server subprocess; each client is its own loopback
address (127.0.0.0/8). Asserted: who is served and who is turned away, the
counts ``/metrics`` shows; never timings.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import httpx
import trio
from support.abuse import (
    abuse_server,
    connection_from,
    health_from,
    oversized_frame_from,
    read_until_closed,
    served,
)

LONG_JOB = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 100000, "tickSeconds": 1}}
OFFENDER = "127.0.0.2"
BYSTANDER = "127.0.0.1"
PARTIAL_HEAD = b"GET /api/health HTTP/1.1\r\nHost: local"


async def turned_away(url: str, source: str) -> None:
    """Wait until ``source`` is turned away (the server punishes once it has seen the end)."""
    with trio.fail_after(30):
        while served(await health_from(url, source)):
            pass


async def metric(client: httpx.AsyncClient, name: str) -> float:
    """One unlabelled sample of ``/metrics``."""
    text = (await client.get("/metrics")).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in /metrics"
    return float(match.group(1))


async def slowloris_from(url: str, source: str) -> None:
    """A request head that never ends, from ``source``, until the server cuts it."""
    stream = await connection_from(url, source)
    async with stream:
        await stream.send_all(PARTIAL_HEAD)
        assert await read_until_closed(stream) == b""


async def test_an_oversized_frame_turns_its_address_away_for_the_cooldown(
    tmp_path: Path,
) -> None:
    """After a 1009 close, the sender's address is reset at accept, another address is
    served; once the cool-down ends, the sender is served again."""
    async with abuse_server(tmp_path, "--abuse-cooldown", "2") as (server, client):
        job_id = (await client.post("/api/jobs", json=LONG_JOB)).json()["id"]
        assert served(await health_from(server.url, OFFENDER))
        assert await oversized_frame_from(server.url, f"/api/jobs/{job_id}/ws", OFFENDER) == 1009
        await turned_away(server.url, OFFENDER)
        assert served(await health_from(server.url, BYSTANDER))
        assert await metric(client, "aura_abuse_offences_total") == 1
        with trio.fail_after(30):
            # another process: no event to wait on
            while not served(await health_from(server.url, OFFENDER)):  # noqa: ASYNC110
                await trio.sleep(0.05)


async def test_slowloris_turns_its_address_away_but_idle_connections_do_not(
    tmp_path: Path,
) -> None:
    """A head cut by the header timeout punishes its address; a connection that sent
    nothing, or idled after its answer (keep-alive), is cut without a penalty."""
    args = ("--header-timeout", "1", "--abuse-cooldown", "600")
    async with abuse_server(tmp_path, *args) as (server, client):
        silent, kept = "127.0.0.3", "127.0.0.4"

        async def silent_until_cut() -> None:
            async with await connection_from(server.url, silent) as stream:
                assert await read_until_closed(stream) == b""

        async def idle_after_answer() -> None:
            async with await connection_from(server.url, kept) as stream:
                await stream.send_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert served(await read_until_closed(stream))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(silent_until_cut)
            nursery.start_soon(idle_after_answer)
        await slowloris_from(server.url, OFFENDER)
        await turned_away(server.url, OFFENDER)
        for _ in range(5):
            assert await health_from(server.url, OFFENDER) == b""
        for source in (BYSTANDER, silent, kept):
            assert served(await health_from(server.url, source)), source
        assert await metric(client, "aura_abuse_offences_total") == 1
        assert await metric(client, "aura_connections_turned_away_total") >= 6


async def test_a_flood_of_abandoned_requests_turns_its_address_away(tmp_path: Path) -> None:
    """``HEAD`` + a pipelined ``GET``, hung up on at once, in a loop: the address is turned
    away; closing event streams once their head arrived is no offence."""
    async with abuse_server(tmp_path, "--abuse-cooldown", "600") as (server, client):
        reader = "127.0.0.5"
        for _ in range(60):
            async with await connection_from(server.url, reader) as stream:
                await stream.send_all(b"GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await stream.receive_some(4096)
        storm = b"HEAD /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n" + (
            b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        with trio.fail_after(60):
            while not await metric(client, "aura_abuse_offences_total"):
                for _ in range(20):
                    with contextlib.suppress(trio.BrokenResourceError, OSError):  # turned away
                        async with await connection_from(server.url, OFFENDER) as stream:
                            await stream.send_all(storm)
        await turned_away(server.url, OFFENDER)
        for source in (BYSTANDER, reader):
            assert served(await health_from(server.url, source)), source
        assert await metric(client, "aura_abuse_offences_total") == 1


async def test_the_penalty_table_is_bounded(tmp_path: Path) -> None:
    """``--abuse-addresses 4``: of 10 offending addresses, 4 are remembered (and turned
    away), the others forgotten (and served)."""
    args = ("--header-timeout", "1", "--abuse-cooldown", "600", "--abuse-addresses", "4")
    sources = [f"127.0.1.{index}" for index in range(1, 11)]
    async with abuse_server(tmp_path, *args) as (server, client):
        async with trio.open_nursery() as nursery:
            for source in sources:
                nursery.start_soon(slowloris_from, server.url, source)
        with trio.fail_after(30):
            # another process: no event to wait on
            while await metric(client, "aura_abuse_offences_total") < len(sources):  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert await metric(client, "aura_penalized_addresses") == 4
        answers = [await health_from(server.url, source) for source in sources]
        assert sum(not served(answer) for answer in answers) == 4


async def test_a_cooldown_of_zero_turns_nobody_away(tmp_path: Path) -> None:
    """``--abuse-cooldown 0`` (behind a reverse proxy): the offender is served at once."""
    args = ("--header-timeout", "1", "--abuse-cooldown", "0")
    async with abuse_server(tmp_path, *args) as (server, client):
        await slowloris_from(server.url, OFFENDER)
        for _ in range(5):
            assert served(await health_from(server.url, OFFENDER))
        assert await metric(client, "aura_abuse_offences_total") == 0
