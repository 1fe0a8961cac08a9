"""Events: what the runtime tells subscribers, with the exact payloads of the contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..protocol._event_type import EventType as EventType
from ._ids import EventId

JsonObject = dict[str, Any]

_View = TypeVar("_View")


@dataclass(slots=True, eq=False)
class Event:
    """One event as delivered to subscribers.

    ``id`` is ``None`` only for ``error`` events about a stream itself (such as a
    subscriber overflow): they are not part of any job's history, and carrying
    no id means a client's last event id stays where it was, so it can resume.
    """

    id: EventId | None
    type: EventType
    data: JsonObject
    job_id: str | None = None
    owner: str | None = None
    _json: str | None = field(default=None, repr=False)
    _views: dict[Callable[[Event], Any], Any] | None = field(default=None, repr=False)

    @property
    def data_json(self) -> str:
        """``data`` as one line of compact JSON, encoded once and shared by every view."""
        if self._json is None:
            self._json = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False)
        return self._json

    def encoded(self, encode: Callable[[Event], _View]) -> _View:
        """``encode(self)``, computed on first use and shared by every later caller.

        An outer layer's wire form of the event (an SSE frame, a WebSocket
        message) is the same for every subscriber, so it is built once per
        event and per ``encode`` function (the cache key), however many
        subscribers send it. Like :attr:`data_json`, it assumes ``data`` is not
        changed once the event has been published.
        """
        views = self._views
        if views is None:
            views = self._views = {}
        else:
            view = views.get(encode, _MISSING)
            if view is not _MISSING:
                return view  # type: ignore[no-any-return]
        view = views[encode] = encode(self)
        return view

    @property
    def id_text(self) -> str | None:
        """The id as ``"<millis>-<counter>"``, or ``None``."""
        return None if self.id is None else str(self.id)

    def to_message(self) -> JsonObject:
        """The WebSocket view: ``{"id", "event", "data"}``."""
        return {"id": self.id_text, "event": self.type.value, "data": self.data}


_MISSING: Any = object()


def stream_error(code: str, message: str, job_id: str | None = None) -> Event:
    """An id-less ``error`` event about a stream (not stored in any history)."""
    data: JsonObject = {"code": code, "message": message}
    if job_id is not None:
        data["jobId"] = job_id
    return Event(id=None, type=EventType.ERROR, data=data, job_id=job_id)
