"""Following a job to its end on a view, with Ctrl-C handled the way the user asked."""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import trio

from ..client import (
    AuraClient,
    AuraError,
    Conflict,
    ConnectionFailed,
    Event,
    JobSnapshot,
    Reconnecting,
)
from ..protocol import JobStatus
from ._common import quiet_stdout
from ._exit import EXIT_CANCELED, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from ._state import FollowState, outcome_status
from ._views import EventView

__all__ = ["follow_job"]

_EXIT_FOR_STATUS = {
    JobStatus.DONE: EXIT_OK,
    JobStatus.FAILED: EXIT_FAILED,
    JobStatus.CANCELED: EXIT_CANCELED,
}

Ask = Callable[[str], bool]


async def follow_job(
    client: AuraClient,
    job_id: str,
    view: EventView,
    *,
    snapshot: JobSnapshot | None = None,
    last_event_id: str | None = None,
    cancel_on_interrupt: bool = False,
    ask: Ask | None = None,
) -> int:
    """Show a job's events on ``view`` until it ends; return the exit code.

    Ctrl-C (SIGINT): with ``cancel_on_interrupt`` the job is cancelled and the
    stream followed to its ``job-cancelled``; else, with ``ask`` (stdin is a
    terminal), the user is asked whether to cancel; else following stops
    (:data:`EXIT_INTERRUPTED`) and the job goes on. A second Ctrl-C stops
    following at once. When stdout's reader goes away (``| head``), following
    stops quietly (:data:`EXIT_INTERRUPTED`) and the job goes on. A checkpoint;
    cancelling the caller stops following (the job goes on).
    """
    following = _Following(client, job_id, view, cancel_on_interrupt, ask)
    with trio.open_signal_receiver(signal.SIGINT) as interrupts:
        await following.start(snapshot)
        try:
            async with trio.open_nursery() as nursery:
                following.nursery = nursery
                nursery.start_soon(following.watch_interrupts, interrupts)
                nursery.start_soon(following.consume, last_event_id)
        except BaseException:
            view.finish(None)  # stop a live display before the error shows
            raise
    return await following.outcome()


@dataclass
class _Following:
    """The state of one ``follow``: what ended it, and what Ctrl-C has done so far."""

    client: AuraClient
    job_id: str
    view: EventView
    cancel_on_interrupt: bool
    ask: Ask | None
    nursery: trio.Nursery | None = None
    #: The terminal event (or, after a 204, the snapshot) once the job ended.
    final: Event | JobSnapshot | None = None
    #: Why the stream gave up, if it did.
    failure: AuraError | None = None
    #: Following stopped on the user's word; the job goes on.
    detached: bool = False
    #: Whoever read the output went away (``| head``); the job goes on.
    output_closed: bool = False
    cancel_requested: bool = False
    #: The scope of the question "Cancel job ...?" while it is asked.
    prompt_scope: trio.CancelScope | None = None

    async def start(self, snapshot: JobSnapshot | None) -> None:
        """Seed the view with the job's snapshot (fetched if not given) and start it."""
        state = FollowState(self.job_id)
        if snapshot is None:
            try:
                snapshot = await self.client.get_job(self.job_id)
            except ConnectionFailed:
                snapshot = None  # the stream retries; the header waits for events
        if snapshot is not None:
            state.seed(snapshot)
        self.view.start(state)

    def stop(self) -> None:
        """End following: the stream and the watcher of Ctrl-C."""
        assert self.nursery is not None
        self.nursery.cancel_scope.cancel()

    def detach(self) -> None:
        self.detached = True
        self.stop()

    def on_reconnect(self, info: Reconnecting) -> None:
        self.view.note(
            f"connection lost ({info.reason}); reconnecting in {info.delay:g} s "
            f"(try {info.attempt} of {info.max_attempts})"
        )

    async def consume(self, last_event_id: str | None) -> None:
        """Show every event to the terminal one; then stop following."""
        try:
            async with self.client.events(
                self.job_id, last_event_id=last_event_id, on_reconnect=self.on_reconnect
            ) as stream:
                async for event in stream:
                    self.view.event(event)
                    if event.is_terminal:
                        self.final = event
        except AuraError as error:
            self.failure = error
        except BrokenPipeError:
            self.output_closed = True
        self.stop()

    async def watch_interrupts(self, interrupts: AsyncIterator[int]) -> None:
        """Act on each Ctrl-C: cancel, ask, or stop following."""
        assert self.nursery is not None
        async for _ in interrupts:
            if self.prompt_scope is not None:
                self.prompt_scope.cancel()  # a second Ctrl-C at the question: stop
                return
            if self.cancel_requested:
                self.detach()
                return
            if self.cancel_on_interrupt:
                self.nursery.start_soon(self.request_cancel)
            elif self.ask is not None:
                self.nursery.start_soon(self.prompt, self.ask)
            else:
                self.detach()
                return

    async def request_cancel(self) -> None:
        self.cancel_requested = True
        self.view.note(f"cancelling job {self.job_id} ...")
        try:
            await self.client.cancel_job(self.job_id)
        except Conflict:
            self.view.note("the job had already ended")
        except AuraError as error:
            self.view.note(f"could not cancel: {error}")

    async def prompt(self, ask: Ask) -> None:
        """Ask whether to cancel (in a thread, as stdin blocks); cancel or stop following."""
        with self.view.paused():
            with trio.CancelScope() as scope:
                self.prompt_scope = scope
                answer = await trio.to_thread.run_sync(ask, self.job_id, abandon_on_cancel=True)
            self.prompt_scope = None
            if scope.cancelled_caught:
                sys.stderr.write("\n")  # the question's line was left open
            if scope.cancelled_caught or not answer:
                self.view.finish(None)  # stop the display without resuming it
                self.detach()
                return
        await self.request_cancel()

    async def outcome(self) -> int:
        """Show the summary and return the exit code (a 204 asks for the snapshot)."""
        job_id = self.job_id
        if self.output_closed:
            quiet_stdout()
            sys.stderr.write(f"output closed; stopped following; job {job_id} goes on\n")
            return EXIT_INTERRUPTED
        if self.detached:
            self.view.finish(self.final)
            sys.stderr.write(
                f"stopped following; job {job_id} goes on (aura-actors follow {job_id})\n"
            )
            return EXIT_INTERRUPTED
        if self.failure is not None:
            self.view.finish(None)
            raise self.failure
        final = self.final
        if final is None:
            # 204: the job ended and its events expired; its snapshot still says how.
            final = await self.client.get_job(job_id)
        self.view.finish(final)
        status = outcome_status(final)
        return EXIT_FAILED if status is None else _EXIT_FOR_STATUS[status]
