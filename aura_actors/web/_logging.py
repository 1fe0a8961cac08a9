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


def configure_logging(level: int = logging.INFO) -> None:
    """Send ``aura_actors`` logs to stderr as JSON lines.

    Quart logs an unhandled exception in a route on the app's logger, named
    after its module (``aura_actors.web._app``), so that too is one JSON line
    (with the path, never the query).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
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
    request_logger.info(message, extra=fields)
