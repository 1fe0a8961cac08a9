"""Which Hypercorn the workarounds were written and tested against, checked at startup."""

from __future__ import annotations

import importlib.metadata

#: Hypercorn release series whose insides this module was written and tested against.
TESTED_VERSIONS = ("0.18",)


class UntestedHypercorn(RuntimeError):
    """The installed Hypercorn is not one this server's workarounds were tested with."""


def installed_version() -> str:
    """The version of the installed Hypercorn distribution."""
    return importlib.metadata.version("hypercorn")


def check_version(version: str | None = None) -> None:
    """Raise :class:`UntestedHypercorn` unless ``version`` (default: installed) is tested."""
    version = installed_version() if version is None else version
    series = ".".join(version.split(".")[:2])
    if series not in TESTED_VERSIONS:
        tested = ", ".join(f"{tested}.x" for tested in TESTED_VERSIONS)
        raise UntestedHypercorn(
            f"Hypercorn {version} is untested: aura_actors.web._hypercorn works around "
            f"the insides of Hypercorn {tested} only. Install a tested version "
            f"(pip install 'hypercorn[trio]>=0.18,<0.19'), or re-check each workaround "
            f"there against the new version and add it to TESTED_VERSIONS."
        )
