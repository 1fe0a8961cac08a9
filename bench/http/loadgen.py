"""The load process: one HTTP scenario against a running server, from its own process.

``python -m bench.http.loadgen SCENARIO --port P --server-pid PID --config JSON``

Runs one HTTP scenario against a server that is already listening and prints
one JSON object on stdout (progress goes to stderr). Scenarios:

``latency``
    ``jobs`` long synthetic jobs, ``clients`` SSE clients (client *i* follows job
    *i* mod ``jobs``), of which a fraction ``silent`` connect and then read
    nothing. Over a ``window`` of seconds, every event a reading client parses
    gives one latency sample: the client's ``time.time()`` in ms minus the
    event id's ``unixMillis`` part (the moment the server stamped the report;
    both processes read the same wall clock). Events stamped before the
    client's stream opened (replayed history) are not counted. Server CPU and RSS are
    sampled from ``/proc/<pid>`` at the window's ends, and so is the CPU of each process
    ``other_pids`` names (``{name: pid}``: a cluster's worker and Redis). With
    ``transport`` ``"ws"`` the clients are WebSocket clients of ``GET /api/jobs/{id}/ws``
    (:mod:`bench.http.ws`) instead of SSE clients; the latency is computed the same way.
``idle``
    Opens ``steps`` (e.g. ``[1000, 5000]``) idle SSE connections to quiet jobs,
    and reports the server's RSS growth per open connection at each step.
``cancel``
    ``count`` times: a job, its stream, the first ``step-progress``, then
    ``POST /cancel``; the latency runs to ``job-cancelled`` parsed on the stream.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from typing import Any

import trio

from bench.http.wire import SseStream, id_millis, open_sse, request
from bench.http.ws import WsStream, open_ws
from bench.procstat import ProcSample, cpu_percent, sample
from bench.stats import cdf_points, summarize

HOST = "127.0.0.1"
CONNECT_CONCURRENCY = 64


_STARTED = time.monotonic()


def log(message: str) -> None:
    """A progress line on stderr (the parent passes it through)."""
    print(
        f"    loadgen [{time.monotonic() - _STARTED:6.1f}s]: {message}", file=sys.stderr, flush=True
    )


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def create_job(port: int, params: dict[str, Any]) -> str:
    """``POST /api/jobs`` for a synthetic job; return its id."""
    response = await request(
        HOST, port, "POST", "/api/jobs", {"pipeline": "synthetic", "params": params}
    )
    if response.status != 202:
        raise RuntimeError(f"POST /api/jobs answered {response.status}: {response.body[:300]!r}")
    job_id: str = response.json()["id"]
    return job_id


async def create_jobs(port: int, count: int, params: dict[str, Any]) -> list[str]:
    """Create ``count`` jobs, a few requests at a time, in order."""
    ids: list[str | None] = [None] * count
    limiter = trio.CapacityLimiter(16)

    async def one(index: int) -> None:
        async with limiter:
            ids[index] = await create_job(port, params)

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(one, index)
    return [job_id for job_id in ids if job_id is not None]


async def cancel_jobs(port: int, ids: list[str]) -> None:
    """``POST /cancel`` every job (a 409 for one that already ended is fine)."""
    limiter = trio.CapacityLimiter(16)

    async def one(job_id: str) -> None:
        async with limiter:
            await request(HOST, port, "POST", f"/api/jobs/{job_id}/cancel")

    async with trio.open_nursery() as nursery:
        for job_id in ids:
            nursery.start_soon(one, job_id)


class Tally:
    """Counts connection attempts; :meth:`wait_for` waits until a number have settled."""

    def __init__(self) -> None:
        self.connected = 0
        self.failed = 0
        self._target = 0
        self._reached = trio.Event()

    def settle(self, ok: bool) -> None:
        """Record one attempt that connected (``ok``) or failed."""
        if ok:
            self.connected += 1
        else:
            self.failed += 1
        if self.connected + self.failed >= self._target:
            self._reached.set()

    async def wait_for(self, target: int) -> None:
        """Wait until ``target`` attempts have settled."""
        self._target = target
        self._reached = trio.Event()
        if self.connected + self.failed >= target:
            return
        await self._reached.wait()


class Recorder(Tally):
    """Latency samples and counts, recorded only while the window is open."""

    def __init__(self) -> None:
        super().__init__()
        self.open = False
        self.latencies_ms: list[float] = []
        self.events = 0
        self.ended_early = 0


async def _open_stream(port: int, job_id: str, limiter: trio.CapacityLimiter) -> SseStream:
    async with limiter:
        stream = await open_sse(HOST, port, f"/api/jobs/{job_id}/events")
    if stream.status != 200:
        await stream.aclose()
        raise RuntimeError(f"event stream answered {stream.status}")
    return stream


async def _open_ws_stream(port: int, job_id: str, limiter: trio.CapacityLimiter) -> WsStream:
    """The WebSocket variant of :func:`_open_stream` (refusal: ``WsHandshakeError``)."""
    async with limiter:
        return await open_ws(HOST, port, f"/api/jobs/{job_id}/ws")


async def _reader(
    port: int,
    job_id: str,
    silent: bool,
    recorder: Recorder,
    limiter: trio.CapacityLimiter,
    transport: str = "sse",
) -> None:
    try:
        stream: SseStream | WsStream
        if transport == "ws":
            stream = await _open_ws_stream(port, job_id, limiter)
        else:
            stream = await _open_stream(port, job_id, limiter)
    except (OSError, RuntimeError):
        recorder.settle(False)
        return
    recorder.settle(True)
    # Only events stamped after the stream opened count: replayed history is not delivery.
    opened_ms = time.time() * 1000.0
    async with stream.stream:
        if silent:
            await trio.sleep_forever()
        while not stream.closed:
            events = await stream.receive()
            if not recorder.open or not events:
                continue
            now_ms = time.time() * 1000.0
            latencies = recorder.latencies_ms
            for event in events:
                if event.id:
                    stamped = id_millis(event.id)
                    if stamped >= opened_ms:
                        latencies.append(now_ms - stamped)
                        recorder.events += 1
        recorder.ended_early += 1


async def latency(port: int, server_pid: int, config: dict[str, Any]) -> dict[str, Any]:
    """The ``latency`` scenario (see the module docstring)."""
    jobs, clients, window = config["jobs"], config["clients"], config["window"]
    repeats = max(1, int(config.get("repeats", 1)))
    silent_every = round(1 / config["silent"]) if config.get("silent") else 0
    transport = config.get("transport", "sse")
    params = {"stages": 1, "ticks": 100_000, "tickSeconds": config["tick_seconds"]}
    log(f"creating {jobs} jobs")
    phase = time.monotonic()
    ids = await create_jobs(port, jobs, params)
    create_seconds = time.monotonic() - phase
    recorder = Recorder()
    limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)
    result: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        log(f"opening {clients} event streams ({transport})")
        connect_start = time.monotonic()
        for index in range(clients):
            silent = bool(silent_every) and index % silent_every == silent_every - 1
            job_id = ids[index % len(ids)]
            nursery.start_soon(_reader, port, job_id, silent, recorder, limiter, transport)
        await recorder.wait_for(clients)
        result["connect_seconds"] = time.monotonic() - connect_start
        await trio.sleep(config.get("warmup", 1.0))
        log(
            f"{recorder.connected} streams open ({recorder.failed} failed); "
            f"measuring {repeats} x {window} s"
        )
        others = {str(k): int(v) for k, v in config.get("other_pids", {}).items()}
        windows = [await _window(recorder, server_pid, window, others) for _ in range(repeats)]
        nursery.cancel_scope.cancel()
    log("cancelling the jobs")
    phase = time.monotonic()
    await cancel_jobs(port, ids)
    result.update(windows[0])
    result.update(
        transport=transport,
        create_seconds=create_seconds,
        cancel_all_seconds=time.monotonic() - phase,
        jobs=jobs,
        clients=clients,
        silent_clients=clients // silent_every if silent_every else 0,
        connected=recorder.connected,
        failed=recorder.failed,
        ended_early=recorder.ended_early,
    )
    if repeats > 1:
        result["windows"] = [{k: v for k, v in w.items() if k != "latency_cdf"} for w in windows]
    return result


async def _window(
    recorder: Recorder, server_pid: int, window: float, others: dict[str, int] | None = None
) -> dict[str, Any]:
    """One measuring window: latency samples, delivered events/s, server and load CPU, and
    the CPU of ``others`` (name: pid; a cluster's worker and Redis beside its API node)."""
    others = others or {}
    recorder.latencies_ms = []
    recorder.events = 0
    others_before = {name: sample(pid) for name, pid in others.items()}
    before, self_before = sample(server_pid), _self_sample()
    started = time.monotonic()
    recorder.open = True
    await trio.sleep(window)
    recorder.open = False
    elapsed = time.monotonic() - started
    after, self_after = sample(server_pid), _self_sample()
    others_after = {name: sample(pid) for name, pid in others.items()}
    latencies = recorder.latencies_ms
    cpu_seconds = after.cpu_seconds - before.cpu_seconds
    extra: dict[str, Any] = {}
    if others:
        extra["others_cpu_percent"] = {
            name: cpu_percent(others_before[name], others_after[name], elapsed) for name in others
        }
        extra["others_cpu_us_per_event"] = {
            name: (others_after[name].cpu_seconds - others_before[name].cpu_seconds)
            * 1e6
            / recorder.events
            if recorder.events
            else math.nan
            for name in others
        }
    return {
        **extra,
        "window_seconds": elapsed,
        "events": recorder.events,
        "events_per_second": recorder.events / elapsed,
        "latency_ms": summarize(latencies),
        "latency_cdf": cdf_points(latencies),
        "server_cpu_percent": cpu_percent(before, after, elapsed),
        "server_cpu_us_per_event": cpu_seconds * 1e6 / recorder.events
        if recorder.events
        else math.nan,
        "server_rss_bytes": after.rss_bytes,
        "load_cpu_percent": cpu_percent(self_before, self_after, elapsed),
    }


def _self_sample() -> ProcSample:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return ProcSample(0, usage.ru_utime + usage.ru_stime)


async def _idle_reader(stream: SseStream) -> None:
    async with stream.stream:
        while not stream.closed:
            await stream.receive()


async def idle(port: int, server_pid: int, config: dict[str, Any]) -> dict[str, Any]:
    """The ``idle`` scenario (see the module docstring)."""
    steps: list[int] = sorted(config["steps"])
    ids = await create_jobs(port, 10, {"stages": 1, "ticks": 1, "tickSeconds": 3600})
    await trio.sleep(0.5)
    base = sample(server_pid)
    limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)
    points = []
    tally = Tally()

    async def connect(index: int) -> None:
        try:
            stream = await _open_stream(port, ids[index % len(ids)], limiter)
        except (OSError, RuntimeError):
            tally.settle(False)
            return
        tally.settle(True)
        await _idle_reader(stream)

    async with trio.open_nursery() as nursery:
        started = 0
        for target in steps:
            log(f"opening idle streams up to {target}")
            for index in range(started, target):
                nursery.start_soon(connect, index)
            started = target
            await tally.wait_for(target)
            opened, failed = tally.connected, tally.failed
            await trio.sleep(config.get("settle", 1.0))
            now = sample(server_pid)
            delta = now.rss_bytes - base.rss_bytes
            points.append(
                {
                    "connections": opened,
                    "failed": failed,
                    "server_rss_bytes": now.rss_bytes,
                    "rss_delta_bytes": delta,
                    "rss_bytes_per_connection": delta / opened if opened else math.nan,
                }
            )
            log(f"{opened} open: {delta / max(opened, 1) / 1024:.1f} KiB RSS per connection")
        nursery.cancel_scope.cancel()
    await cancel_jobs(port, ids)
    return {"base_rss_bytes": base.rss_bytes, "points": points}


async def cancel(port: int, server_pid: int, config: dict[str, Any]) -> dict[str, Any]:
    """The ``cancel`` scenario (see the module docstring)."""
    count = config["count"]
    params = {"stages": 1, "ticks": 100_000, "tickSeconds": config.get("tick_seconds", 0.02)}
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    for index in range(count):
        job_id = await create_job(port, params)
        stream = await open_sse(HOST, port, f"/api/jobs/{job_id}/events")
        async with stream.stream:
            seen_progress = False
            while not seen_progress and not stream.closed:
                seen_progress = any(e.event == "step-progress" for e in await stream.receive())
            began = time.perf_counter()
            async with trio.open_nursery() as nursery:

                async def post(job: str = job_id) -> None:
                    response = await request(HOST, port, "POST", f"/api/jobs/{job}/cancel")
                    key = str(response.status)
                    statuses[key] = statuses.get(key, 0) + 1

                nursery.start_soon(post)
                done = False
                while not done and not stream.closed:
                    done = any(e.event == "job-cancelled" for e in await stream.receive())
                if done:
                    latencies.append((time.perf_counter() - began) * 1000.0)
        if (index + 1) % max(1, count // 4) == 0:
            log(f"{index + 1}/{count} cancels")
    return {
        "count": count,
        "latency_ms": summarize(latencies),
        "samples_ms": latencies,
        "cancel_statuses": statuses,
    }


SCENARIOS = {"latency": latency, "idle": idle, "cancel": cancel}


def main(argv: list[str] | None = None) -> int:
    """Run one scenario and print its JSON result on stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--config", default="{}", help="the scenario's settings as JSON")
    args = parser.parse_args(argv)
    _raise_fd_limit()
    result = trio.run(SCENARIOS[args.scenario], args.port, args.server_pid, json.loads(args.config))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
