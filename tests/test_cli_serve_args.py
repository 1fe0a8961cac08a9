"""``aura-actors serve`` refuses bad flags and ``AURA_*`` values with a message, not a traceback."""

from __future__ import annotations

import pytest

from aura_actors.cli import build_parser


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("MAX_CONCURRENT_JOBS", "0", "must be at least 1"),
        ("MAX_QUEUED_JOBS", "-1", "must not be negative"),
        ("KEEPALIVE", "nan", "must be positive"),
        ("HISTORY_TTL", "soon", "could not convert"),
    ],
)
def test_bad_environment_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(f"AURA_{name}", value)
    with pytest.raises(SystemExit) as exit_info:
        build_parser()
    message = str(exit_info.value.code)
    assert message.startswith(f"aura-actors: invalid value for AURA_{name}: {value!r}")
    assert problem in message


@pytest.mark.parametrize(
    "flag",
    [["--max-concurrent-jobs", "0"], ["--keepalive", "0"], ["--history-ttl", "-1"]],
)
def test_bad_flag_is_a_usage_error(flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["serve", *flag])
    assert exit_info.value.code == 2
    assert flag[0] in capsys.readouterr().err


def test_good_values_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURA_MAX_CONCURRENT_JOBS", "7")
    args = build_parser().parse_args(["serve", "--keepalive", "2.5"])
    assert args.max_concurrent_jobs == 7
    assert args.keepalive == 2.5
