"""The WebSocket view of a job's stream: the same ids and data as SSE, plus cancel."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from pydantic import ValidationError
from quart import Quart, websocket

from ..protocol import ClientMessage, CloseCode, EventId
from ..runtime import (
    Event,
    EventType,
    JobAlreadyFinished,
    JobNotFound,
    JobRecord,
    Runtime,
    RuntimeRefusal,
    Subscription,
)
from ._asgi import FRAMES_EXTENSION
from ._context import ServerContext, parse_last_event_id
from ._errors import ApiError
from ._hypercorn import FrameWriter, text_frame
from ._logging import log_request


def _encode_message(event: Event) -> str:
    event_id = "null" if event.id is None else f'"{event.id}"'
    return f'{{"id":{event_id},"event":"{event.type.value}","data":{event.data_json}}}'


def event_message(event: Event) -> str:
    """``{"id", "event", "data"}`` as text, encoded once per event and shared."""
    return event.encoded(_encode_message)


def _encode_frame(event: Event) -> bytes:
    return text_frame(event_message(event))


def event_frame(event: Event) -> bytes:
    """:func:`event_message` as one server text frame, built once per event and shared."""
    return event.encoded(_encode_frame)


def error_message(code: str, message: str, job_id: str | None = None) -> str:
    """An id-less ``error`` message for the client."""
    data: dict[str, Any] = {"code": code, "message": message}
    if job_id is not None:
        data["jobId"] = job_id
    return json.dumps({"id": None, "event": "error", "data": data})


def register_ws_routes(app: Quart, context: ServerContext) -> None:
    """Add ``/api/jobs/<id>/ws`` to ``app``."""

    @app.websocket("/api/jobs/<job_id>/ws")
    async def job_ws(job_id: str) -> None:
        """One line per connection, when it ends: the path (never the query), the close code."""
        started = time.perf_counter()
        close_code: int | None = None
        try:
            close_code = await _serve(context, job_id)
        finally:
            # close_code None: the client went away first.
            log_request("GET", websocket.path, 101, started, "websocket", close_code=close_code)


async def _serve(context: ServerContext, job_id: str) -> CloseCode:
    """Accept, check who asks and for what, then stream; the close code it ended with."""
    await websocket.accept()
    try:
        user = context.user_of(websocket)
    except ApiError as error:
        await websocket.close(CloseCode.UNAUTHORIZED, error.message)
        return CloseCode.UNAUTHORIZED
    try:
        job = await context.runtime.get(job_id, owner=user)
        after = parse_last_event_id(None, websocket.args.get("lastEventId"))
    except JobNotFound:
        await websocket.close(CloseCode.NOT_FOUND, "job not found")
        return CloseCode.NOT_FOUND
    except ApiError as error:
        await websocket.send(error_message(error.code, error.message, job_id))
        await websocket.close(CloseCode.BAD_REQUEST, error.code)
        return CloseCode.BAD_REQUEST
    context.metrics.stream_opened("websocket")
    try:
        close_code = await _JobSocket(context.runtime, job, user).stream(after)
    finally:
        context.metrics.stream_closed("websocket")
    await websocket.close(close_code)
    return close_code


#: Sends one text message the usual way (Quart's ``websocket.send``): a whole frame.
SendText = Callable[[str], Awaitable[None]]


def _frames_of(batch: list[Event]) -> bytes:
    if len(batch) == 1:
        return event_frame(batch[0])
    return b"".join([event_frame(event) for event in batch])


async def send_ws_events(
    subscription: Subscription, frames: FrameWriter | None, send: SendText
) -> CloseCode:
    """Send ``subscription``'s events until it ends; the close code its last batch calls for.

    Each wakeup writes every ready event: their prebuilt frames in one write
    where the server takes them (``frames``), else one message each through
    ``send``. No lock and no checkpoint of its own around the write: the
    wakeup is the loop's one trip through the scheduler (a second one per
    event, a lock's, cost about as much as the write). Frames never
    interleave without one, since every message, this loop's or another
    task's, goes to the connection whole, in one write under the
    connection's own write lock.
    """
    close_code = CloseCode.GOING_AWAY
    while batch := await subscription.receive_batch():
        if frames is None or not await frames(_frames_of(batch)):
            for event in batch:
                await send(event_message(event))
        for event in batch:
            if event.type.is_terminal:
                close_code = CloseCode.NORMAL
            elif event.type is EventType.ERROR and event.id is None:
                close_code = CloseCode.TRY_AGAIN_LATER
    return close_code


class _JobSocket:
    """One job's events out, the client's cancels in, over the current WebSocket."""

    def __init__(self, runtime: Runtime, job: JobRecord, user: str | None) -> None:
        self.runtime = runtime
        self.job = job
        self.user = user
        extensions: dict[str, Any] = websocket.scope.get("extensions") or {}
        self._frames: FrameWriter | None = extensions.get(FRAMES_EXTENSION)

    async def stream(self, after: EventId | None) -> CloseCode:
        """Send the job's events (after ``after``) until its stream ends; the close code."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._serve_client_messages)
            job_id, user = self.job.id, self.user
            subscription = await self.runtime.subscribe_job(job_id, owner=user, after=after)
            with subscription:
                close_code = await send_ws_events(subscription, self._frames, websocket.send)
                if subscription.is_exhausted and self.job.status.is_terminal:
                    close_code = CloseCode.NORMAL
            nursery.cancel_scope.cancel()
        return close_code

    async def _serve_client_messages(self) -> None:
        while True:
            raw = await websocket.receive()
            try:
                # Binary frames are not messages of this protocol.
                ClientMessage.model_validate_json(raw if isinstance(raw, str) else "")
            except ValidationError:
                unsupported = 'unsupported message; send {"action": "cancel"}'
                await websocket.send(error_message("bad_message", unsupported, self.job.id))
                continue
            try:
                await self.runtime.cancel(self.job.id, owner=self.user)
            except (JobAlreadyFinished, RuntimeRefusal) as refusal:
                await websocket.send(error_message(refusal.code, str(refusal), self.job.id))
