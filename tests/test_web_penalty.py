"""The listen backlog's default."""

from __future__ import annotations

from pathlib import Path

from aura_actors.web import ServerSettings
from aura_actors.web._server import DEFAULT_BACKLOG, default_backlog, hypercorn_config


def test_the_backlog_defaults_to_1024_or_the_kernels_cap(tmp_path: Path) -> None:
    assert hypercorn_config(ServerSettings(backlog=300)).backlog == 300
    low = tmp_path / "somaxconn"
    low.write_text("128\n")
    assert default_backlog(low) == 128
    assert default_backlog(tmp_path / "missing") == DEFAULT_BACKLOG
    cap = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert hypercorn_config(ServerSettings()).backlog == min(DEFAULT_BACKLOG, cap)
