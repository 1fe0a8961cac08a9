"""The service a contract test talks to: one process, or a cluster behind a load balancer.

The HTTP contract tests take the ``service`` fixture (parametrised ``process``
and ``cluster``) instead of starting a server themselves:

- ``process``: the in-process server of :func:`support.servers.run_server`, a
  fresh one per test, with the settings of the module's ``service_settings``
  fixture; auth is off, as before.
- ``cluster``: real processes, started once per test session on a private
  prefix of the shared Redis: two ``serve --role api`` and two
  ``serve --role worker`` nodes sharing one data dir, reached through the
  round-robin :class:`~support.proxy.RoundRobinProxy` (each new connection goes
  to the next API node; clients here keep no connection alive, so consecutive
  requests and every reconnect land on different nodes). Auth is on and each
  test acts as a user of its own, so listings and ``/api/events`` see only that
  test's jobs; at the end of a test its unfinished jobs are cancelled and
  awaited, so the workers' slots are free for the next one.

A test that needs the in-process server's insides (its runtime, a patched
module, an autojump clock) takes ``process_server`` instead: one process only.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from aura_actors.web import ServerSettings

from .proxy import RoundRobinProxy
from .redis import SHARED_URL, shared_prefix
from .servers import InProcessServer, ServerProcess, run_server, server_process
from .streams import read_sse

PROCESS, CLUSTER = "process", "cluster"
#: Job slots per cluster worker (two workers).
WORKER_SLOTS = 2
#: The cluster's settings, for what the contract tests look at.
CLUSTER_KEEPALIVE = 0.2
CLUSTER_PING_INTERVAL = 0.2
#: The cluster's CORS origins (``--cors-origin``).
CORS_ORIGINS = ("http://localhost:5173", "https://app.example.test:8443")
_USERS = 2000
#: The cluster's nodes: name and role.
NODES = (("api-1", "api"), ("api-2", "api"), ("w-1", "worker"), ("w-2", "worker"))


@dataclass
class Service:
    """What a contract test needs of the server it talks to."""

    kind: str
    url: str
    #: Jobs that run at once; one more waits ``Queued``.
    capacity: int
    #: The data dir (the cluster's nodes share one).
    data_dir: Path = Path()
    #: ``Authorization`` header of this test's user (empty when auth is off).
    auth: dict[str, str] = field(default_factory=dict)
    #: The in-process server (``process`` kind only).
    server: InProcessServer | None = None

    @property
    def is_cluster(self) -> bool:
        return self.kind == CLUSTER

    @property
    def token(self) -> str | None:
        """This test's user's token (``None`` when auth is off)."""
        header = self.auth.get("Authorization")
        return None if header is None else header.removeprefix("Bearer ")

    @property
    def auth_pairs(self) -> list[tuple[str, str]]:
        """The auth header as ``(name, value)`` pairs, for raw requests."""
        return list(self.auth.items())

    def client(self, *, auth: bool = True, **options: Any) -> httpx.AsyncClient:
        """An HTTP client for this service (on a cluster: a new connection per request),
        with this test's user's token unless ``auth`` is false."""
        options.setdefault("timeout", 10)
        if self.is_cluster:
            options.setdefault("limits", httpx.Limits(max_keepalive_connections=0))
        headers = self.auth if auth else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, **options)

    def ws_url(self, job_id: str, query: str = "") -> str:
        """The job's WebSocket URL (with this test's ``access_token`` when auth is on)."""
        parts = [query] if query else []
        if self.auth:
            parts.append(f"access_token={self.token}")
        url = self.url.replace("http://", "ws://") + f"/api/jobs/{job_id}/ws"
        return f"{url}?{'&'.join(parts)}" if parts else url


class ClusterHarness:
    """The session's cluster, run by a trio run of its own in a thread.

    The pytest-trio tests each run in a trio run of their own, so the
    processes, their output and the proxy live in this thread's run, which
    ends (SIGTERM to every node, each must exit 0; the prefix deleted) when
    :meth:`stop` is called.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.tokens = {f"tok-{uuid.uuid4().hex}": f"user-{n}" for n in range(_USERS)}
        self._unused = iter(self.tokens)
        self.url = ""
        self.proxy: RoundRobinProxy | None = None
        self.exit_codes: dict[str, int] = {}
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread = threading.Thread(target=self._run, name="cluster", daemon=True)

    def next_token(self) -> str:
        """The token of a user no test had before."""
        return next(self._unused)

    def next_auth(self) -> dict[str, str]:
        """The ``Authorization`` header of a user no test had before."""
        return {"Authorization": f"Bearer {self.next_token()}"}

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(120):
            raise RuntimeError("the cluster did not start within 120 s")
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(120)
        assert not self._thread.is_alive(), "the cluster did not stop"
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        tokens = self.directory / "tokens.json"
        tokens.write_text(json.dumps({"tokens": self.tokens}), encoding="utf-8")
        async with shared_prefix() as prefix, AsyncExitStack() as stack:
            common = ["--redis", SHARED_URL, "--redis-prefix", prefix, "--log-format", "json"]
            common += ["--auth-tokens", str(tokens), "--abuse-cooldown", "0"]
            common += ["--keepalive", str(CLUSTER_KEEPALIVE)]
            common += ["--websocket-ping-interval", str(CLUSTER_PING_INTERVAL)]
            for origin in CORS_ORIGINS:
                common += ["--cors-origin", origin]
            nodes: dict[str, ServerProcess] = {}
            for name, role in (
                ("api-1", "api"),
                ("api-2", "api"),
                ("w-1", "worker"),
                ("w-2", "worker"),
            ):
                args = [*common, "--role", role, "--node-name", name]
                args += ["--max-concurrent-jobs", str(WORKER_SLOTS)]
                nodes[name] = await stack.enter_async_context(
                    server_process(self.directory / "data", args)
                )
            async with trio.open_nursery() as nursery:
                self.proxy = RoundRobinProxy([nodes["api-1"].url, nodes["api-2"].url])
                await nursery.start(self.proxy.serve)
                self.url = self.proxy.url
                self._ready.set()
                await self._stop.wait()
                nursery.cancel_scope.cancel()
            for node in nodes.values():
                node.send_signal()
            with trio.fail_after(30):
                for name, node in nodes.items():
                    self.exit_codes[name] = await node.wait()
                    (self.directory / f"{name}.log").write_bytes(node.stderr)
            bad = {name: code for name, code in self.exit_codes.items() if code != 0}
            assert not bad, f"cluster nodes exited with {bad}"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHarness]:
    """Two API nodes and two workers on a private Redis prefix, for the whole session."""
    harness = ClusterHarness(tmp_path_factory.mktemp("cluster"))
    harness.start()
    yield harness
    harness.stop()


#: Marks a test that needs the in-process server (its runtime, a patch, settings of its
#: own): it runs against one process only. Give the reason: ``one_process("why")``.
one_process = pytest.mark.one_process


def parametrize_service(metafunc: pytest.Metafunc) -> None:
    """``pytest_generate_tests``: run each test that uses ``service`` against both kinds
    (``service_kind`` is ``process`` or ``cluster``), one-process tests against one."""
    if "service_kind" not in metafunc.fixturenames:
        return
    only_one = metafunc.definition.get_closest_marker("one_process") is not None
    kinds = [PROCESS] if only_one else [PROCESS, CLUSTER]
    metafunc.parametrize("service_kind", kinds)


@pytest.fixture
def service_settings() -> ServerSettings:
    """The one-process server's settings; a module overrides this fixture for its own."""
    return ServerSettings()


@pytest.fixture
def cluster_or_none(service_kind: str, request: pytest.FixtureRequest) -> ClusterHarness | None:
    """The session's cluster when the test runs against it (started on first use)."""
    if service_kind != CLUSTER:
        return None
    harness: ClusterHarness = request.getfixturevalue("cluster")
    return harness


@pytest.fixture
async def service(
    service_kind: str,  # parametrised by parametrize_service
    cluster_or_none: ClusterHarness | None,
    service_settings: ServerSettings,
    tmp_path: Path,
) -> AsyncIterator[Service]:
    """The service under test: see the module docstring."""
    if cluster_or_none is None:
        async with run_server(service_settings, data_dir=tmp_path) as server:
            capacity = server.settings.runtime.max_concurrent_jobs
            yield Service(PROCESS, server.url, capacity, tmp_path, server=server)
        return
    service = Service(
        CLUSTER,
        cluster_or_none.url,
        2 * WORKER_SLOTS,
        cluster_or_none.directory / "data",
        cluster_or_none.next_auth(),
    )
    yield service
    await _cancel_unfinished(service)


async def _cancel_unfinished(service: Service) -> None:
    """Cancel the test user's Queued and Running jobs and wait until each has ended."""
    with trio.fail_after(30):
        async with service.client() as client:
            unfinished: list[str] = []
            for status in ("Queued", "Running"):
                listing = await client.get("/api/jobs", params={"status": status, "limit": 200})
                unfinished += [job["id"] for job in listing.json()["jobs"]]
            for job_id in unfinished:
                await client.post(f"/api/jobs/{job_id}/cancel")
            for job_id in unfinished:
                await read_sse(client, f"/api/jobs/{job_id}/events")


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the service (the test's user's token when auth is on)."""
    async with service.client() as client:
        yield client


@pytest.fixture
def process_server(service: Service) -> InProcessServer:
    """The in-process server, for a test marked :data:`one_process` that needs its insides."""
    assert service.server is not None, "mark the test one_process: it needs the server's insides"
    return service.server
