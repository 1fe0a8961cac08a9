"""Structured logs: one JSON object per line on stderr, with no token ever in them."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonLineFormatter(logging.Formatter):
    """Formats a record and its ``extra`` fields as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextLineFormatter(logging.Formatter):
    """A readable line for a person at a terminal: time, level, message, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")
        )
        line = f"{moment} {record.levelname.lower():7} {record.getMessage()}"
        if fields:
            line = f"{line}  {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def configure_logging(level: int | str = logging.INFO, log_format: str = "json") -> None:
    """Send ``aura_actors`` logs to stderr: JSON lines, or readable text lines.

    ``log_format`` is ``json``, ``text``, or ``auto`` (text when stderr is a
    terminal). Quart logs an unhandled exception in a route on the app's
    logger, named after its module (``aura_actors.web._app``), so that too is
    one line (with the path, never the query).
    """
    if isinstance(level, str):
        level = logging.getLevelNamesMapping()[level.upper()]
    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextLineFormatter() if log_format == "text" else JsonLineFormatter())
    logger = logging.getLogger("aura_actors")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


request_logger = logging.getLogger("aura_actors.requests")


def log_request(
    method: str,
    path: str,
    status: int,
    started: float | None,
    message: str = "request",
    **extra: Any,
) -> None:
    """The one log line of a request (of a WebSocket: when it ends).

    ``path`` is the path only, never the query, which may hold an access
    token. ``started`` is the :func:`time.perf_counter` at which the request
    came in (``ms`` is left out without it).
    """
    fields: dict[str, Any] = {"method": method, "path": path, "status": status, **extra}
    if started is not None:
        fields["ms"] = round((time.perf_counter() - started) * 1000, 2)
    request_logger.debug(message, extra=fields)
