"""The peer: FastAPI + sse-starlette on uvicorn, asyncio task per job, a Queue per subscriber.

Written the way a Python user would build the same service without aura-actors,
plainly and without handicaps. It serves the benchmark's subset of the contract
(CONTRACT.md sections 3 and 4) for the ``synthetic`` pipeline:

- ``POST /api/jobs`` ``{"pipeline": "synthetic", "params": {stages, ticks, tickSeconds}}``
  → 202 with the snapshot and ``Location``;
- ``GET /api/jobs/{id}`` → the snapshot;
- ``GET /api/jobs/{id}/events`` → SSE: the job's history, then live, until the
  terminal event (``Last-Event-ID`` honoured);
- ``POST /api/jobs/{id}/cancel`` → 202, or 409 when the job has ended;
- ``GET /api/jobs/{id}/ws`` → WebSocket (CONTRACT.md section 5): one text frame
  ``{"id", "event", "data"}`` per event, the same ids as SSE (``lastEventId``
  query honoured), ``{"action": "cancel"}`` from the client cancels; closed with
  1000 after the terminal event, 4404 for an unknown job;
- ``GET /api/health``.

Each event is JSON-encoded once when published. Event ids are
``<unixMillis>-<counter>``, stamped when the stage reports. A subscriber's
queue holds at most 1024 events; one that falls further behind is dropped
(its stream ends), so a reader that stops reading cannot grow the server's
memory without bound nor slow the job. Run with
``python -m bench.peers.fastapi_peer --port P``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

QUEUE_SIZE = 1024
TERMINAL_EVENTS = frozenset({"job-completed", "job-failed", "job-cancelled"})
TERMINAL_STATUSES = frozenset({"Done", "Failed", "Canceled"})


class SyntheticParams(BaseModel):
    """The ``synthetic`` pipeline's params (camelCase on the wire)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    stages: int = Field(default=3, ge=1, le=50)
    ticks: int = Field(default=10, ge=1, le=100_000)
    tick_seconds: float = Field(default=0.01, ge=0, alias="tickSeconds")


class JobRequest(BaseModel):
    """The body of ``POST /api/jobs``."""

    pipeline: str
    params: dict[str, Any] = Field(default_factory=dict)


_counter = itertools.count()
_last_millis = 0


def next_event_id() -> str:
    """``<unixMillis>-<counter>``, strictly increasing."""
    global _counter, _last_millis
    now = time.time_ns() // 1_000_000
    if now > _last_millis:
        _last_millis = now
        _counter = itertools.count()
    return f"{_last_millis}-{next(_counter)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    """One job: its state, history and subscribers."""

    id: str
    params: SyntheticParams
    status: str = "Queued"
    stage: str | None = None
    progress_pct: float = 0.0
    message: str = ""
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    last_event_id: str | None = None
    history: list[ServerSentEvent] = field(default_factory=list)
    subscribers: set[asyncio.Queue[ServerSentEvent | None]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None

    def publish(self, event_type: str, data: dict[str, Any]) -> None:
        """Stamp, record and hand one event to every subscriber's queue."""
        event_id = next_event_id()
        payload = json.dumps({"jobId": self.id, **data}, separators=(",", ":"))
        event = ServerSentEvent(data=payload, event=event_type, id=event_id)
        self.last_event_id = event_id
        if (
            event_type == "step-progress"
            and self.history
            and self.history[-1].event == "step-progress"
        ):
            self.history[-1] = event
        else:
            self.history.append(event)
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)
        if event_type in TERMINAL_EVENTS:
            for queue in self.subscribers:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
            self.subscribers.clear()

    def set_status(self, status: str) -> None:
        """Change status and publish ``job-status``."""
        previous, self.status = self.status, status
        if status == "Running":
            self.started_at = _now()
        elif status in TERMINAL_STATUSES:
            self.finished_at = _now()
        self.publish(
            "job-status",
            {
                "status": status,
                "previousStatus": previous,
                "stage": self.stage,
                "progressPct": self.progress_pct,
            },
        )

    def snapshot(self) -> dict[str, Any]:
        """The contract's job snapshot."""
        return {
            "id": self.id,
            "pipeline": "synthetic",
            "params": self.params.model_dump(by_alias=True),
            "status": self.status,
            "stage": self.stage,
            "progressPct": self.progress_pct,
            "message": self.message,
            "etaSeconds": None,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "artifacts": [],
            "error": None,
            "lastEventId": self.last_event_id,
        }


JOBS: dict[str, Job] = {}


async def run_job(job: Job) -> None:
    """The job's task: every stage's ticks, with events; ``job-cancelled`` on cancel."""
    params = job.params
    started = time.monotonic()
    total = params.stages * params.ticks
    try:
        job.set_status("Running")
        for index in range(params.stages):
            job.stage = f"stage-{index + 1}"
            step = {"step": job.stage, "stepIndex": index, "totalSteps": params.stages}
            job.publish("step-status", {**step, "state": "Started"})
            for tick in range(params.ticks):
                await asyncio.sleep(params.tick_seconds)
                done = index * params.ticks + tick + 1
                job.progress_pct = round(100.0 * done / total, 2)
                job.message = f"tick {tick + 1}/{params.ticks}"
                elapsed = time.monotonic() - started
                job.publish(
                    "step-progress",
                    {
                        "step": job.stage,
                        "progressPct": job.progress_pct,
                        "stepProgressPct": round(100.0 * (tick + 1) / params.ticks, 2),
                        "message": job.message,
                        "etaSeconds": round(elapsed * (total - done) / done, 3),
                        "currentItem": tick + 1,
                        "totalItems": params.ticks,
                    },
                )
            job.publish("step-status", {**step, "state": "Completed"})
        job.progress_pct = 100.0
        job.set_status("Done")
        job.publish(
            "job-completed",
            {"artifacts": [], "durationSeconds": round(time.monotonic() - started, 3)},
        )
    except asyncio.CancelledError:
        job.message = "canceled by user"
        job.set_status("Canceled")
        job.publish("job-cancelled", {"step": job.stage, "message": job.message})
        raise


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


app = FastAPI()


@app.get("/api/health")
async def health() -> dict[str, Any]:
    """Liveness and counts."""
    running = sum(1 for job in JOBS.values() if job.status == "Running")
    return {"status": "ok", "jobs": len(JOBS), "running": running}


@app.post("/api/jobs", status_code=202, response_model=None)
async def create_job(request: JobRequest) -> JSONResponse:
    """Validate, create and start a job."""
    if request.pipeline != "synthetic":
        return _error(422, "unknown_pipeline", f"unknown pipeline {request.pipeline!r}")
    try:
        params = SyntheticParams.model_validate(request.params)
    except ValueError as exc:
        return _error(422, "invalid_params", str(exc))
    job = Job(id=uuid.uuid4().hex, params=params)
    JOBS[job.id] = job
    job.publish(
        "job-status",
        {"status": "Queued", "previousStatus": None, "stage": None, "progressPct": 0.0},
    )
    job.task = asyncio.create_task(run_job(job))
    return JSONResponse(
        job.snapshot(), status_code=202, headers={"Location": f"/api/jobs/{job.id}"}
    )


@app.get("/api/jobs/{job_id}", response_model=None)
async def get_job(job_id: str) -> JSONResponse:
    """The job's snapshot, or 404."""
    job = JOBS.get(job_id)
    if job is None:
        return _error(404, "job_not_found", f"no job {job_id}")
    return JSONResponse(job.snapshot())


@app.post("/api/jobs/{job_id}/cancel", response_model=None)
async def cancel_job(job_id: str) -> JSONResponse:
    """Cancel the job's task: 202, 404 or 409."""
    job = JOBS.get(job_id)
    if job is None:
        return _error(404, "job_not_found", f"no job {job_id}")
    if job.status in TERMINAL_STATUSES or job.task is None:
        return _error(409, "job_finished", f"job {job_id} is {job.status}")
    job.task.cancel()
    return JSONResponse(job.snapshot(), status_code=202)


def _id_pair(event_id: str) -> tuple[int, int]:
    millis, _, counter = event_id.partition("-")
    return int(millis), int(counter)


async def _stream(job: Job, request: Request, after: str | None) -> AsyncIterator[ServerSentEvent]:
    queue: asyncio.Queue[ServerSentEvent | None] = asyncio.Queue(QUEUE_SIZE)
    history = list(job.history)
    live = job.status not in TERMINAL_STATUSES
    if live:
        job.subscribers.add(queue)
    try:
        last = _id_pair(after) if after else None
        for event in history:
            if last is None or _id_pair(str(event.id)) > last:
                yield event
        while live:
            live_event = await queue.get()
            if live_event is None:
                return
            yield live_event
    finally:
        job.subscribers.discard(queue)


@app.get("/api/jobs/{job_id}/events", response_model=None)
async def job_events(
    job_id: str,
    request: Request,
    last_event_id: str | None = Header(default=None),
) -> EventSourceResponse | JSONResponse:
    """The job's SSE stream: history (after ``Last-Event-ID``), then live events."""
    job = JOBS.get(job_id)
    if job is None:
        return _error(404, "job_not_found", f"no job {job_id}")
    return EventSourceResponse(
        _stream(job, request, last_event_id),
        ping=10,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _ws_text(event: ServerSentEvent) -> str:
    """The WebSocket message of one event: ``{"id","event","data"}`` (data already JSON)."""
    return f'{{"id":"{event.id}","event":"{event.event}","data":{event.data}}}'


async def _ws_client_messages(websocket: WebSocket, job: Job) -> None:
    """Read the client's messages until it goes away: ``{"action": "cancel"}`` cancels."""
    while True:
        text = await websocket.receive_text()
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("action") == "cancel":
            if job.task is not None and job.status not in TERMINAL_STATUSES:
                job.task.cancel()
            continue
        error = {"code": "bad_message", "message": 'send {"action": "cancel"}', "jobId": job.id}
        await websocket.send_text(json.dumps({"id": None, "event": "error", "data": error}))


async def _ws_events(websocket: WebSocket, job: Job, after: str | None) -> int:
    """Send history then live events; return the close code."""
    queue: asyncio.Queue[ServerSentEvent | None] = asyncio.Queue(QUEUE_SIZE)
    history = list(job.history)
    live = job.status not in TERMINAL_STATUSES
    if live:
        job.subscribers.add(queue)
    try:
        last = _id_pair(after) if after else None
        for event in history:
            if last is None or _id_pair(str(event.id)) > last:
                await websocket.send_text(_ws_text(event))
        while live:
            live_event = await queue.get()
            if live_event is None:
                break
            await websocket.send_text(_ws_text(live_event))
    finally:
        job.subscribers.discard(queue)
    # 1013 (try again later) when this subscriber was dropped for falling behind.
    return 1000 if job.status in TERMINAL_STATUSES else 1013


@app.websocket("/api/jobs/{job_id}/ws")
async def job_ws(
    websocket: WebSocket,
    job_id: str,
    last_event_id: str | None = Query(default=None, alias="lastEventId"),
) -> None:
    """The job's events over WebSocket, one text frame each; the client may cancel."""
    await websocket.accept()
    job = JOBS.get(job_id)
    if job is None:
        await websocket.close(4404, "job not found")
        return
    sender = asyncio.create_task(_ws_events(websocket, job, last_event_id))
    receiver = asyncio.create_task(_ws_client_messages(websocket, job))
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
    if sender.done() and not sender.cancelled() and sender.exception() is None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.close(sender.result())


def main(argv: list[str] | None = None) -> int:
    """Serve the peer on ``--host``/``--port`` with uvicorn (one process, default loop)."""
    parser = argparse.ArgumentParser(description="The FastAPI + sse-starlette peer.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--max-concurrent-jobs", type=int, default=0, help="accepted, unused")
    args = parser.parse_args(argv)
    print(f"peer listening on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", backlog=4096)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
