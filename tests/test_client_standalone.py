"""The client stands alone, the CLI imports lazily, and both streams share one resume logic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import trio
import trio.testing
from trio_websocket import CloseReason, ConnectionClosed

from aura_actors.cli._arguments import DEFAULT_URL as CLI_DEFAULT_URL
from aura_actors.client import (
    DEFAULT_URL,
    ConnectionLost,
    Event,
    NotFound,
    ProtocolError,
    Reconnecting,
    ReconnectPolicy,
    StepProgressEvent,
    Unauthorized,
    parse_event,
)
from aura_actors.client._events import _TYPED
from aura_actors.client._resume import Resume, StreamDropped
from aura_actors.client._websocket import JobSocket
from aura_actors.protocol import EVENT_DATA_MODELS, CloseCode, EventType

#: Modules of the server side, and the CLI.
SERVER_SIDE = ("aura_actors.runtime", "aura_actors.web", "aura_actors.pipelines", "aura_actors.cli")
#: Packages only a server needs. (Not rich: httpx itself imports it when it is installed,
#: for its own command line.)
HEAVY = ("quart", "quart_trio", "quart_schema", "hypercorn", "werkzeug")


def modules_after(code: str) -> list[str]:
    """The modules loaded in a fresh interpreter after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def offending(loaded: list[str], packages: tuple[str, ...]) -> list[str]:
    """The loaded modules that are one of ``packages`` or inside one."""
    return [
        name
        for name in loaded
        if any(name == package or name.startswith(f"{package}.") for package in packages)
    ]


def test_importing_the_client_loads_no_server_code() -> None:
    loaded = modules_after("import aura_actors.client, aura_actors.client.sync")
    assert "aura_actors.client._websocket" in loaded  # the probe sees the client itself
    assert offending(loaded, SERVER_SIDE) == []
    assert offending(loaded, HEAVY) == []


def test_the_version_loads_neither_the_server_nor_the_client_nor_rich() -> None:
    loaded = modules_after(
        "from aura_actors.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass"
    )
    assert offending(loaded, ("aura_actors.client", "aura_actors.protocol", *SERVER_SIDE[:3])) == []
    assert offending(loaded, (*HEAVY, "rich", "httpx", "pydantic", "trio")) == []


def test_a_client_command_does_not_configure_the_server() -> None:
    loaded = modules_after(
        "from aura_actors.cli import build_parser\n"
        "build_parser({'jobs'}).parse_args(['jobs', '--status', 'running'])"
    )
    assert offending(loaded, (*SERVER_SIDE[:3], *HEAVY)) == []


def test_the_cli_and_the_client_agree_on_the_default_url() -> None:
    assert CLI_DEFAULT_URL == DEFAULT_URL


def test_each_typed_event_is_its_protocol_payload_model() -> None:
    assert set(_TYPED) == {event_type.value for event_type in EventType}
    for event_type, model in EVENT_DATA_MODELS.items():
        typed = _TYPED[event_type.value]
        assert issubclass(typed, model) and issubclass(typed, Event)
        assert set(model.model_fields) <= set(typed.model_fields)


def test_events_that_do_not_fit_the_protocol_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        parse_event("1-1", "step-progress", {"jobId": "j", "step": "s"})
    with pytest.raises(ProtocolError):
        parse_event("01-1", "warning", {"jobId": "j", "step": None, "message": "m"})
    unknown = parse_event("1-2", "from-the-future", {"jobId": "j", "x": 1})
    assert (
        type(unknown) is Event and unknown.job_id == "j" and unknown.data == {"jobId": "j", "x": 1}
    )


# -- the shared resume logic --------------------------------------------------------------


def progress(event_id: str | None) -> Event:
    return parse_event(
        event_id,
        "step-progress",
        {
            "jobId": "j",
            "step": "s",
            "progressPct": 1.0,
            "stepProgressPct": 1.0,
            "message": "",
            "etaSeconds": None,
            "currentItem": None,
            "totalItems": None,
        },
    )


def test_resume_delivers_new_ids_once_and_errors_without_moving() -> None:
    resume = Resume("stream", ReconnectPolicy(), last_event_id="5-0")
    resume.failures = 3
    assert not resume.accept(progress("4-9"))
    assert not resume.accept(progress("5-0"))
    assert resume.failures == 3 and resume.duplicates_dropped == 2
    assert resume.accept(progress("5-1"))
    assert resume.last_event_id == "5-1" and resume.failures == 0
    error = parse_event(None, "error", {"code": "subscriber_overflow", "message": "slow"})
    assert resume.accept(error) and resume.last_event_id == "5-1"
    assert isinstance(progress("6-0"), StepProgressEvent)


async def test_resume_backs_off_then_gives_up(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[Reconnecting] = []
    resume = Resume("the stream", ReconnectPolicy(max_attempts=3), on_reconnect=seen.append)
    resume.server_retry = 0.5
    start = trio.current_time()
    for _ in range(3):
        await resume.backoff("cut")
    assert trio.current_time() - start == pytest.approx(0.5 + 1 + 2)
    assert [(r.attempt, r.delay, r.reason) for r in seen] == [
        (1, 0.5, "cut"),
        (2, 1.0, "cut"),
        (3, 2.0, "cut"),
    ]
    with pytest.raises(ConnectionLost, match="the stream: connection lost \\(cut\\)"):
        await resume.backoff("cut")


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (CloseCode.NORMAL, None),
        (CloseCode.NOT_FOUND, NotFound),
        (CloseCode.UNAUTHORIZED, Unauthorized),
        (CloseCode.MESSAGE_TOO_BIG, ProtocolError),
        (CloseCode.GOING_AWAY, StreamDropped),
        (CloseCode.TRY_AGAIN_LATER, StreamDropped),
        (1006, StreamDropped),
    ],
)
def test_websocket_close_codes_come_from_the_protocol(
    code: int, outcome: type[Exception] | None
) -> None:
    async def never() -> None:
        raise AssertionError

    socket = JobSocket(
        job_id="j",
        url="ws://x",
        headers=[],
        last_event_id=None,
        policy=ReconnectPolicy(),
        rest_cancel=never,
    )
    closed = ConnectionClosed(CloseReason(code, "why"))
    if outcome is None:
        socket._closed(closed)
    else:
        with pytest.raises(outcome):
            socket._closed(closed)
