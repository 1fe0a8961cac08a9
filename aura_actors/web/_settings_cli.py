"""The ``serve`` flags and their ``AURA_*`` variables, made from the settings' fields.

Each field of :class:`ServerSettings` and of its :class:`RuntimeConfig` that
carries a :class:`Setting` in its metadata is one flag, ``--<name>`` with ``-`` for ``_``, and one
variable, ``AURA_<NAME>``. A flag given wins over the variable, the variable
over the field's default. A ``bool`` is ``--<name>/--no-<name>`` (the
variable: ``1``/``0``, ``true``/``false``, ``yes``/``no``, ``on``/``off``);
a tuple is a repeatable flag (the variable: a comma list). Values are checked
by the settings themselves, so a flag and a variable are refused alike.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..runtime import RuntimeConfig
from ._settings import SETTING, ServerSettings, Setting

ENV_PREFIX = "AURA_"

_METAVARS: dict[type, str] = {int: "N", float: "NUMBER", str: "TEXT", Path: "PATH"}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """An ``AURA_*`` value that cannot be used; the message names the variable."""


@dataclass(frozen=True, slots=True)
class _Option:
    """One setting as a flag and a variable."""

    field: str
    spec: Setting
    #: ``str``, ``int``, ``float``, ``bool`` or ``Path``: what one value converts to.
    kind: type
    repeated: bool
    default: Any
    #: The settings object a value is checked against (by replacing this field in it).
    owner: ServerSettings | RuntimeConfig

    @property
    def name(self) -> str:
        return self.spec.name or self.field

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def parse(self, text: str) -> Any:
        """One value from its text, checked; raises :class:`argparse.ArgumentTypeError`."""
        try:
            value = _parse_bool(text) if self.kind is bool else self.kind(text)
            if not self.repeated:
                replace(self.owner, **{self.field: value})  # type: ignore[arg-type]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{self.field} ")) from None
        return value

    def help(self) -> str:
        default = self.default
        if isinstance(default, tuple):
            default = ",".join(default)
        shown = "none" if default is None else str(default)
        return f"{self.spec.help} (default: {shown}; env {self.env})".replace("%", "%%")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected one of {', '.join(sorted(_TRUE | _FALSE))}")


def _kind(hint: Any) -> tuple[type, bool]:
    """What one value of a field typed ``hint`` converts to, and whether the field repeats."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True
    if typing.get_origin(hint) is typing.Literal:
        return str, False  # the settings check the choice
    if hint not in (str, int, float, bool, Path):
        raise TypeError(f"no flag for settings of type {hint!r}")
    return hint, False


def _options_of(
    owner: ServerSettings | RuntimeConfig, extra: Mapping[str, Setting]
) -> list[_Option]:
    hints = typing.get_type_hints(type(owner))
    options = []
    for item in fields(owner):
        spec = item.metadata.get(SETTING) or extra.get(item.name)
        if spec is None:
            continue
        kind, repeated = _kind(hints[item.name])
        options.append(_Option(item.name, spec, kind, repeated, _default(item), owner))
    return options


def _default(item: Field[Any]) -> Any:
    if item.default is not MISSING:
        return item.default
    assert item.default_factory is not MISSING
    return item.default_factory()


def options() -> list[_Option]:
    """Every flag of ``serve``: the server's settings, then the runtime's."""
    defaults = ServerSettings()
    return _options_of(defaults, {}) + _options_of(defaults.runtime, {})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add a flag to ``parser`` for every setting, its default and variable in its help."""
    for option in options():
        kwargs: dict[str, Any] = {"dest": option.field, "default": None, "help": option.help()}
        if option.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = option.parse
            kwargs["metavar"] = option.spec.metavar or _METAVARS.get(option.kind, "VALUE")
            if option.repeated:
                kwargs["action"] = "append"
        parser.add_argument(option.flag, **kwargs)


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> ServerSettings:
    """The settings of parsed ``args``, ``environ``'s ``AURA_*`` values, and the defaults.

    Raises :class:`SettingsError` for an unusable variable.
    """
    values: dict[str, Any] = {}
    for option in options():
        value = getattr(args, option.field, None)
        if value is None:
            raw = environ.get(option.env, "")
            if raw.strip() == "":
                continue
            value = _from_env(option, raw)
        values[option.field] = tuple(value) if option.repeated else value
    try:
        return ServerSettings.of(**values)
    except ValueError as exc:  # a combination the settings refuse
        raise SettingsError(str(exc)) from None


def _from_env(option: _Option, raw: str) -> Any:
    try:
        if option.repeated:
            return [option.parse(part.strip()) for part in raw.split(",") if part.strip()]
        return option.parse(raw)
    except argparse.ArgumentTypeError as exc:
        raise SettingsError(f"invalid value for {option.env}: {raw!r} ({exc})") from None
