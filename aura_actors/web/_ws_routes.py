"""The WebSocket view of a job's stream: the same ids and data as SSE, plus cancel."""

from __future__ import annotations

import json
import time
from typing import Any

import trio
from quart import Quart, websocket

from ..runtime import Event, EventType, JobAlreadyFinished, JobNotFound, RuntimeRefusal
from ._context import ServerContext, parse_last_event_id
from ._errors import ApiError
from ._logging import log_request

#: Close codes (RFC 6455 private range for ours).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404


def _encode_message(event: Event) -> str:
    event_id = "null" if event.id is None else f'"{event.id}"'
    return f'{{"id":{event_id},"event":"{event.type.value}","data":{event.data_json}}}'


def event_message(event: Event) -> str:
    """``{"id", "event", "data"}`` as text, encoded once per event and shared."""
    return event.encoded(_encode_message)


def error_message(code: str, message: str, job_id: str | None = None) -> str:
    """An id-less ``error`` message for the client."""
    data: dict[str, Any] = {"code": code, "message": message}
    if job_id is not None:
        data["jobId"] = job_id
    return json.dumps({"id": None, "event": "error", "data": data})


def register_ws_routes(app: Quart, context: ServerContext) -> None:
    """Add ``/api/jobs/<id>/ws`` to ``app``."""
    runtime = context.runtime

    @app.websocket("/api/jobs/<job_id>/ws")
    async def job_ws(job_id: str) -> None:
        """One line per connection, when it ends: the path (never the query), the close code."""
        started = time.perf_counter()
        close_code: int | None = None
        try:
            close_code = await serve_job_ws(job_id)
        finally:
            # close_code None: the client went away first.
            log_request("GET", websocket.path, 101, started, "websocket", close_code=close_code)

    async def serve_job_ws(job_id: str) -> int:
        await websocket.accept()
        try:
            user = context.user_of(websocket)
        except ApiError as error:
            await websocket.close(CLOSE_UNAUTHORIZED, error.message)
            return CLOSE_UNAUTHORIZED
        try:
            job = runtime.get(job_id, owner=user)
            after = parse_last_event_id(None, websocket.args.get("lastEventId"))
        except JobNotFound:
            await websocket.close(CLOSE_NOT_FOUND, "job not found")
            return CLOSE_NOT_FOUND
        except ApiError as error:
            await websocket.send(error_message(error.code, error.message, job_id))
            await websocket.close(CLOSE_BAD_REQUEST, error.code)
            return CLOSE_BAD_REQUEST

        send_lock = trio.Lock()

        async def send(text: str) -> None:
            async with send_lock:
                await websocket.send(text)

        async def serve_client_messages() -> None:
            while True:
                raw = await websocket.receive()
                message: object = None
                if isinstance(raw, str):  # binary frames are not messages of this protocol
                    try:
                        message = json.loads(raw)
                    except ValueError:
                        message = None
                if not isinstance(message, dict) or message.get("action") != "cancel":
                    await send(
                        error_message(
                            "bad_message",
                            'unsupported message; send {"action": "cancel"}',
                            job.id,
                        )
                    )
                    continue
                try:
                    runtime.cancel(job.id, owner=user)
                except JobAlreadyFinished as refusal:
                    await send(error_message(refusal.code, str(refusal), job.id))
                except RuntimeRefusal as refusal:  # pragma: no cover - defensive
                    await send(error_message(refusal.code, str(refusal), job.id))

        close_code = CLOSE_GOING_AWAY
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_client_messages)
            with runtime.subscribe_job(job.id, owner=user, after=after) as subscription:
                async for event in subscription:
                    await send(event_message(event))
                    if event.type.is_terminal:
                        close_code = CLOSE_NORMAL
                    elif event.type is EventType.ERROR and event.id is None:
                        close_code = CLOSE_TRY_AGAIN_LATER
                if subscription.is_exhausted and job.status.is_terminal:
                    close_code = CLOSE_NORMAL
            nursery.cancel_scope.cancel()
        await websocket.close(close_code)
        return close_code
