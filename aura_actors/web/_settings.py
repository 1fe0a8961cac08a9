"""Every setting of the server, defined once: default, range, help, flag and ``AURA_*`` variable.

A field of :class:`ServerSettings` carries a :class:`Setting` in its
metadata (``field(default=..., metadata=about("what it is", ge=0))``). From the fields alone,
``_settings_cli`` makes the ``serve`` flags (``--keepalive``), their
environment variables (``AURA_KEEPALIVE``), the defaults ``--help`` shows,
and the range checks, which ``ServerSettings`` itself applies on
construction, so a bad value is refused the same way from anywhere.

The runtime's share is a :class:`~aura_actors.runtime.RuntimeConfig`, held
whole (``settings.runtime``): its defaults and checks are its own.
Its fields carry their own :class:`Setting`, so its flags come the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..runtime import RuntimeConfig
from ..runtime._setting import SETTING as SETTING
from ..runtime._setting import Setting as Setting
from ..runtime._setting import about as about
from ..runtime._setting import check_ranges


def _server_runtime() -> RuntimeConfig:
    # The job store lives in the data dir: finished jobs outlive a restart.
    return RuntimeConfig(persist_jobs=True)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What ``aura-actors serve`` runs with (each a flag and an ``AURA_<NAME>`` variable).

    Raises :class:`ValueError` on a value out of its range.
    """

    host: str = field(default="127.0.0.1", metadata=about("interface to listen on"))
    port: int = field(
        default=8000,
        metadata=about("TCP port; 0 picks a free one (the printed URL says which)", ge=0, le=65535),
    )
    keepalive: float = field(
        default=10.0,
        metadata=about("seconds of quiet before a ': keep-alive' comment", gt=0, metavar="SECONDS"),
    )
    auth_tokens: Path | None = field(
        default=None,
        metadata=about('JSON file {"tokens": {"<token>": "<user>"}}; enables auth', metavar="FILE"),
    )
    cors_origins: tuple[str, ...] = field(
        default=("http://localhost:5173",),
        metadata=about(
            "origin allowed by CORS (repeatable; the variable takes a comma list)",
            name="cors_origin",
            metavar="ORIGIN",
        ),
    )
    sse_retry_ms: int = field(
        default=1000,
        metadata=about("the 'retry:' an SSE stream opens with", ge=0, metavar="MS"),
    )
    websocket_ping_interval: float = field(
        default=20.0, metadata=about("seconds between WebSocket pings", gt=0, metavar="SECONDS")
    )
    graceful_timeout: float = field(
        default=3.0,
        metadata=about(
            "seconds in-flight requests get at shutdown before they are cut",
            ge=0,
            metavar="SECONDS",
        ),
    )
    gc_freeze: bool = field(
        default=True,
        metadata=about(
            "freeze what is alive at start out of the cyclic GC's sight and collect young "
            "objects less often (cheaper delivery under load)"
        ),
    )
    log_format: str = field(
        default="auto",
        metadata=about(
            "'text': readable lines; 'json': one JSON object per line; "
            "'auto': text on a terminal, JSON otherwise",
            metavar="auto|text|json",
        ),
    )
    log_level: str = field(
        default="info",
        metadata=about(
            "least important log lines shown; each request's line is at 'debug'",
            metavar="debug|info|warning|error",
        ),
    )
    allowed_hosts: tuple[str, ...] = field(
        default=(),
        metadata=about(
            "a Host name the server answers besides loopback ones when bound to loopback "
            "(repeatable; DNS-rebinding defence; the variable takes a comma list)",
            name="allowed_host",
            metavar="NAME",
        ),
    )
    max_connections: int | None = field(
        default=None,
        metadata=about(
            "open connections at most; more are answered 503 and closed "
            "(none: three quarters of the open-file limit)",
            ge=1,
        ),
    )
    header_timeout: float = field(
        default=5.0,
        metadata=about(
            "seconds a connection may take to send a whole request head, and may stay "
            "idle between requests, before it is closed (slowloris defence)",
            gt=0,
            metavar="SECONDS",
        ),
    )
    backlog: int | None = field(
        default=None,
        metadata=about(
            "connections the kernel queues for the server to accept; a full queue drops "
            "new ones, which retry a second later (none: 1024, or the kernel's "
            "net.core.somaxconn if lower)",
            ge=1,
        ),
    )
    abuse_cooldown: float = field(
        default=2.0,
        metadata=about(
            "seconds an address whose connection was closed for abuse (an oversized "
            "WebSocket frame, the header timeout) has its new connections closed at once, "
            "doubled for each repeat; 0: off (behind a reverse proxy, where every client "
            "has the proxy's address)",
            ge=0,
            metavar="SECONDS",
        ),
    )
    abuse_addresses: int = field(
        default=4096,
        metadata=about(
            "client addresses the penalty box remembers at most (the least recently "
            "punished are forgotten first)",
            ge=1,
        ),
    )
    demo_jobs: int = field(
        default=0, metadata=about("video jobs submitted at start, to see something move", ge=0)
    )
    #: The runtime's settings (``--max-concurrent-jobs``, ``--data-dir``, ...).
    runtime: RuntimeConfig = field(default_factory=_server_runtime)

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.log_format not in ("auto", "text", "json"):
            raise ValueError("log_format must be 'auto', 'text' or 'json'")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ValueError("log_level must be 'debug', 'info', 'warning' or 'error'")
        self.runtime.check_cluster_flags()

    @classmethod
    def of(cls, **values: Any) -> ServerSettings:
        """The defaults, with ``values`` by field name, the server's or the runtime's."""
        return cls().updated(**values)

    def updated(self, **values: Any) -> ServerSettings:
        """A copy with ``values`` by field name, each going to the server's or the runtime's part.

        Raises :class:`TypeError` for a name of neither, :class:`ValueError`
        for a value out of range.
        """
        own = {item.name for item in fields(self)}
        theirs = {item.name for item in fields(self.runtime)}
        unknown = sorted(set(values) - own - theirs)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        mine = {name: value for name, value in values.items() if name in own}
        runtime = replace(
            mine.pop("runtime", self.runtime),
            **{name: value for name, value in values.items() if name not in own},
        )
        return replace(self, runtime=runtime, **mine)
