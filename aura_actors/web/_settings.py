"""Every setting of the server, defined once: default, range, help, flag and ``AURA_*`` variable.

A field of :class:`ServerSettings` carries a :class:`Setting` in its
metadata (``field(default=..., metadata=about("what it is", ge=0))``). From the fields alone,
``_settings_cli`` makes the ``serve`` flags (``--keepalive``), their
environment variables (``AURA_KEEPALIVE``), the defaults ``--help`` shows,
and the range checks, which ``ServerSettings`` itself applies on
construction, so a bad value is refused the same way from anywhere.

The runtime's share is a :class:`~aura_actors.runtime.RuntimeConfig`, held
whole (``settings.runtime``): its defaults and checks are its own.
:data:`RUNTIME_FLAGS` names those of its fields that are flags of ``serve``
and says what each is for; a RuntimeConfig field that carries a
:class:`Setting` in its own metadata needs no entry there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runtime import RuntimeConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: The metadata key of a field's :class:`Setting`.
SETTING = "aura_setting"


@dataclass(frozen=True, slots=True)
class Setting:
    """What a settings field says about itself: its help, its range, its flag."""

    help: str
    #: Inclusive lower bound.
    ge: float | None = None
    #: Exclusive lower bound.
    gt: float | None = None
    #: Inclusive upper bound.
    le: float | None = None
    #: The flag's argument name in ``--help`` (``FILE``, ``DIR``).
    metavar: str | None = None
    #: The flag's and variable's name when not the field's (``cors_origin``).
    name: str | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range, or ``None`` (NaN is never in range)."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        if isinstance(value, float) and math.isnan(value):
            return "must be a number"
        if self.gt is not None and not value > self.gt:
            return "must be positive" if self.gt == 0 else f"must be greater than {self.gt:g}"
        if self.ge is not None and not value >= self.ge:
            return "must not be negative" if self.ge == 0 else f"must be at least {self.ge:g}"
        if self.le is not None and not value <= self.le:
            return f"must be at most {self.le:g}"
        return None


def about(help: str, **options: Any) -> dict[str, Setting]:
    """A settings field's ``metadata``: ``field(default=..., metadata=about("...", ge=0))``."""
    return {SETTING: Setting(help, **options)}


def check_ranges(settings: DataclassInstance) -> None:
    """Raise :class:`ValueError` naming the first field of ``settings`` out of its range."""
    for item in fields(settings):
        spec = item.metadata.get(SETTING)
        problem = spec.problem(getattr(settings, item.name)) if spec is not None else None
        if problem is not None:
            raise ValueError(f"{item.name} {problem}")


#: The fields of :class:`RuntimeConfig` that are flags of ``serve``, and what each is for.
RUNTIME_FLAGS: dict[str, Setting] = {
    "max_concurrent_jobs": Setting("jobs running at once; the rest wait as Queued"),
    "max_queued_jobs": Setting("jobs waiting beyond which POST /api/jobs answers 429"),
    "history_ttl": Setting("seconds a finished job's events stay replayable", metavar="SECONDS"),
    "max_history_events": Setting("events kept per job (progress compacted) for replay"),
    "subscriber_buffer": Setting("events a subscriber may have waiting before it is dropped"),
    "data_dir": Setting("where the job store and the artifacts live", metavar="DIR"),
}


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
    demo_jobs: int = field(
        default=0, metadata=about("video jobs submitted at start, to see something move", ge=0)
    )
    #: The runtime's settings (``--max-concurrent-jobs``, ``--data-dir``, ...).
    runtime: RuntimeConfig = field(default_factory=_server_runtime)

    def __post_init__(self) -> None:
        check_ranges(self)

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
