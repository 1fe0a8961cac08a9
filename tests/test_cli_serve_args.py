"""``serve`` flags and ``AURA_*`` variables: made from the settings' fields, checked once."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from aura_actors.cli import build_parser, main
from aura_actors.runtime import RuntimeConfig
from aura_actors.web import ServerSettings, SettingsError, add_arguments, settings_from_args
from aura_actors.web._settings import SETTING


def serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("MAX_CONCURRENT_JOBS", "0", "must be at least 1"),
        ("MAX_QUEUED_JOBS", "-1", "must not be negative"),
        ("KEEPALIVE", "nan", "must be a number"),
        ("KEEPALIVE", "0", "must be positive"),
        ("HISTORY_TTL", "soon", "could not convert"),
        ("PORT", "70000", "must be at most 65535"),
        ("GC_FREEZE", "maybe", "expected one of"),
    ],
)
def test_bad_environment_value_names_the_variable(name: str, value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as error:
        settings_from_args(serve_args(), {f"AURA_{name}": value})
    message = str(error.value)
    assert message.startswith(f"invalid value for AURA_{name}: {value!r}")
    assert problem in message


def test_the_command_says_so_and_exits_2_before_serving(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AURA_MAX_CONCURRENT_JOBS", "0")
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aura-actors: invalid value for AURA_MAX_CONCURRENT_JOBS: '0'")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flag", "problem"),
    [
        (["--max-concurrent-jobs", "0"], "must be at least 1"),
        (["--keepalive", "0"], "must be positive"),
        (["--history-ttl", "-1"], "must not be negative"),
        (["--port", "-1"], "must not be negative"),
        (["--demo-jobs", "two"], "invalid literal"),
    ],
)
def test_bad_flag_is_a_usage_error(
    flag: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        serve_args(*flag)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag[0]}" in err and problem in err


def test_flag_wins_over_variable_and_variable_over_default() -> None:
    environ = {"AURA_MAX_CONCURRENT_JOBS": "7", "AURA_KEEPALIVE": "4", "AURA_HOST": " "}
    settings = settings_from_args(serve_args("--keepalive", "2.5"), environ)
    assert settings.runtime.max_concurrent_jobs == 7
    assert settings.keepalive == 2.5
    assert settings.host == "127.0.0.1", "an empty variable is no value"
    assert settings.runtime.persist_jobs, "the server keeps its jobs in the data dir"
    assert settings_from_args(serve_args(), {}) == ServerSettings()


def test_repeatable_flag_comma_variable_and_switches() -> None:
    args = serve_args("--cors-origin", "http://a", "--cors-origin", "http://b", "--no-gc-freeze")
    settings = settings_from_args(args, {"AURA_CORS_ORIGIN": "http://c"})
    assert settings.cors_origins == ("http://a", "http://b")
    assert settings.gc_freeze is False
    environ = {"AURA_CORS_ORIGIN": "http://c, http://d", "AURA_GC_FREEZE": "off"}
    settings = settings_from_args(serve_args(), environ)
    assert settings.cors_origins == ("http://c", "http://d")
    assert settings.gc_freeze is False
    assert settings_from_args(serve_args("--gc-freeze"), {"AURA_GC_FREEZE": "0"}).gc_freeze
    data = settings_from_args(serve_args("--data-dir", "/tmp/x", "--auth-tokens", "t.json"), {})
    assert data.runtime.data_dir == Path("/tmp/x") and data.auth_tokens == Path("t.json")


def test_every_setting_is_a_flag_with_its_default_and_variable_in_the_help() -> None:
    parser = argparse.ArgumentParser(prog="serve")
    add_arguments(parser)
    text = " ".join(parser.format_help().split())
    defaults = ServerSettings()
    for item in dataclasses.fields(ServerSettings):
        if item.name == "runtime":
            continue
        name = item.metadata[SETTING].name or item.name  # cors_origins: --cors-origin
        assert f"--{name.replace('_', '-')}" in text
        assert f"env AURA_{name.upper()}" in text
        default = getattr(defaults, item.name)
        shown = ",".join(default) if isinstance(default, tuple) else str(default)
        assert f"default: {shown}" in text.replace("default: none", "default: None")
    for name in ("max_concurrent_jobs", "max_queued_jobs", "history_ttl", "data_dir"):
        assert f"--{name.replace('_', '-')}" in text
        assert f"default: {getattr(RuntimeConfig(), name)};" in text


def test_settings_refuse_out_of_range_values_however_made() -> None:
    with pytest.raises(ValueError, match="keepalive must be positive"):
        ServerSettings(keepalive=0)
    with pytest.raises(ValueError, match="port must be at most 65535"):
        ServerSettings.of(port=65536)
    with pytest.raises(ValueError, match="max_concurrent_jobs must be at least 1"):
        ServerSettings.of(max_concurrent_jobs=0)


def test_of_and_updated_send_each_value_to_its_part() -> None:
    settings = ServerSettings.of(max_concurrent_jobs=3, keepalive=0.5, data_dir=Path("d"))
    assert settings.keepalive == 0.5
    assert settings.runtime.max_concurrent_jobs == 3
    assert settings.runtime.data_dir == Path("d")
    again = settings.updated(port=0, history_ttl=1.0)
    assert (again.port, again.runtime.history_ttl, again.runtime.max_concurrent_jobs) == (0, 1, 3)
    assert settings.port == 8000, "a copy; the original is unchanged"
    with pytest.raises(TypeError, match="unknown setting"):
        ServerSettings.of(max_concurent_jobs=3)


def test_an_unknown_option_shows_the_commands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: aura-actors serve")
    assert "aura-actors serve: error: unrecognized arguments: --bogus" in err


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("LOG_FORMAT", "xml", "must be 'auto', 'text' or 'json'"),
        ("LOG_LEVEL", "loud", "must be 'debug', 'info'"),
    ],
)
def test_log_settings_are_checked(name: str, value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as error:
        settings_from_args(serve_args(), {f"AURA_{name}": value})
    assert problem in str(error.value)


def test_text_log_lines_are_readable_and_request_lines_are_debug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import logging

    from aura_actors.web._logging import configure_logging, log_request

    configure_logging("info", "text")
    logging.getLogger("aura_actors.jobs").info("job transition", extra={"to": "Done"})
    log_request("GET", "/api/health", 200, None)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err  # the request line is at debug: not shown at info
    assert err[0].endswith("info    job transition  to=Done")
    configure_logging("debug", "json")
    log_request("GET", "/api/health", 200, None)
    (line,) = capsys.readouterr().err.splitlines()
    assert '"msg": "request"' in line and '"path": "/api/health"' in line
