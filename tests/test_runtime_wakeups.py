"""Per-event task switches on the job side: a report costs none while the mailbox has room."""

from __future__ import annotations

from pathlib import Path

import trio

from aura_actors.runtime._stage import Progress, StageContext


def _context(tmp_path: Path, mailbox: trio.MemorySendChannel[object]) -> StageContext:
    return StageContext(
        job_id="job",
        params={},
        stage_name="only",
        stage_index=0,
        total_stages=1,
        data_dir=tmp_path,
        mailbox=mailbox,  # type: ignore[arg-type]
        log_line=lambda line, level="info": None,
        artifacts=[],
    )


async def test_a_report_with_room_in_the_mailbox_does_not_switch_tasks(tmp_path: Path) -> None:
    send, receive = trio.open_memory_channel[object](2)
    context = _context(tmp_path, send)
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await context.report(0.5)
        assert ran == []  # still this task: no switch for a report with room
        await context.report(0.75)
        assert ran == []
        # The mailbox is full now: the next report waits, and the other task runs.
        with trio.move_on_after(0.05):
            await context.report(1.0)
        assert ran == ["other"]
    first, second = receive.receive_nowait(), receive.receive_nowait()
    assert isinstance(first, Progress) and isinstance(second, Progress)
    assert (first.fraction, second.fraction) == (0.5, 0.75)


async def test_a_report_in_a_cancelled_stage_stops_it_and_sends_nothing(tmp_path: Path) -> None:
    send, receive = trio.open_memory_channel[object](2)
    context = _context(tmp_path, send)
    with trio.CancelScope() as scope:
        scope.cancel()
        await context.report(0.5)
        raise AssertionError("a report in a cancelled stage returned")
    assert scope.cancelled_caught
    assert receive.statistics().current_buffer_used == 0
