"""The penalty box's rules (a fake clock) and the listen backlog's default."""

from __future__ import annotations

from pathlib import Path

from aura_actors.web import ServerSettings
from aura_actors.web._penalty import (
    ABANDON_BURST,
    ABANDON_RATE,
    MAX_FACTOR,
    SUSPECT_CONNECTIONS,
    PenaltyBox,
)
from aura_actors.web._server import DEFAULT_BACKLOG, default_backlog, hypercorn_config


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_cooldown_ends() -> None:
    clock = Clock()
    box = PenaltyBox(2.0, clock=clock)
    assert not box.refuses("a")
    box.punish("a", "x")
    assert box.refuses("a") and not box.refuses("b")
    clock.now += 1.9
    assert box.refuses("a")
    clock.now += 0.2
    assert not box.refuses("a")
    assert box.refused == 2


def test_repeat_offences_double_the_cooldown_up_to_the_cap_and_are_forgotten() -> None:
    clock = Clock()
    box = PenaltyBox(1.0, clock=clock)
    for factor in (1, 2, 4, 8, 16, 32, 32):
        box.punish("a", "x")
        clock.now += factor - 0.01
        assert box.refuses("a"), factor
        clock.now += 0.02
        assert not box.refuses("a"), factor
    clock.now += MAX_FACTOR + 1  # clean long enough: the next offence is a first one
    box.punish("a", "x")
    clock.now += 1.01
    assert not box.refuses("a")


def test_offences_during_a_cooldown_do_not_escalate_it() -> None:
    clock = Clock()
    box = PenaltyBox(1.0, clock=clock)
    for _ in range(100):
        box.punish("a", "x")
    assert box.offences == 1
    clock.now += 1.01
    assert not box.refuses("a")


def test_the_table_keeps_the_most_recently_punished() -> None:
    box = PenaltyBox(10.0, capacity=8, clock=Clock())
    for index in range(1000):
        box.punish(str(index), "x")
        assert len(box) <= 8
    assert [box.refuses(str(index)) for index in (991, 992, 999)] == [False, True, True]


def test_a_cooldown_of_zero_punishes_nobody() -> None:
    box = PenaltyBox(0.0, clock=Clock())
    box.punish("a", "x")
    assert not box.refuses("a") and len(box) == 0


def test_the_backlog_defaults_to_1024_or_the_kernels_cap(tmp_path: Path) -> None:
    assert hypercorn_config(ServerSettings(backlog=300)).backlog == 300
    low = tmp_path / "somaxconn"
    low.write_text("128\n")
    assert default_backlog(low) == 128
    assert default_backlog(tmp_path / "missing") == DEFAULT_BACKLOG
    cap = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert hypercorn_config(ServerSettings()).backlog == min(DEFAULT_BACKLOG, cap)


def test_abandoned_requests_are_allowed_in_a_burst_then_at_a_rate() -> None:
    clock = Clock()
    box = PenaltyBox(1.0, clock=clock)
    for _ in range(ABANDON_BURST):
        box.abandoned("a")
    assert not box.refuses("a")
    clock.now += 1.0
    for _ in range(int(ABANDON_RATE)):
        box.abandoned("a")
    assert not box.refuses("a")
    box.abandoned("a")
    assert box.refuses("a") and box.offences == 1


def test_a_recent_abandoner_is_served_a_few_connections_at_a_time() -> None:
    clock = Clock()
    box = PenaltyBox(1.0, clock=clock)
    assert not box.crowded("a", 1000), "no abandoned request: no cap"
    box.abandoned("a")
    assert box.crowded("a", SUSPECT_CONNECTIONS)
    assert not box.crowded("a", SUSPECT_CONNECTIONS - 1)
    clock.now += 2 / ABANDON_RATE  # its allowance whole again
    assert not box.crowded("a", SUSPECT_CONNECTIONS)


def test_a_remembered_offender_is_served_a_few_connections_at_a_time() -> None:
    clock = Clock()
    box = PenaltyBox(1.0, clock=clock)
    box.punish("a", "x")
    clock.now += 1.01
    assert not box.refuses("a")
    assert box.crowded("a", SUSPECT_CONNECTIONS)
    clock.now += MAX_FACTOR  # forgotten
    assert not box.crowded("a", SUSPECT_CONNECTIONS)


def test_a_flood_resumed_after_its_cooldown_is_cut_at_once() -> None:
    clock = Clock()
    box = PenaltyBox(1.0, clock=clock)
    for _ in range(ABANDON_BURST + 1):
        box.abandoned("a")
    assert box.refuses("a")
    clock.now += 1.01
    assert not box.refuses("a")
    box.abandoned("a")
    assert box.refuses("a") and box.offences == 2
