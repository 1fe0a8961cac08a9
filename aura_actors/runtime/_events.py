"""Events: what the runtime tells subscribers, with the exact payloads of the contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from ..protocol import (
    EVENT_DATA_MODELS,
    AnyEventData,
    ErrorData,
    dump_json,
    dump_wire,
    parse_event_data,
)
from ..protocol import (
    EventType as EventType,
)
from ._ids import EventId

JsonObject = dict[str, Any]

_View = TypeVar("_View")


class Event:
    """One event as delivered to subscribers.

    ``id`` is ``None`` only for ``error`` events about a stream itself (such as a
    subscriber overflow): they are not part of any job's history, and carrying
    no id means a client's last event id stays where it was, so it can resume.

    The runtime makes events from typed payloads (``payload``, a model of
    :mod:`aura_actors.protocol`); the store gives them back as JSON text. Each
    form (:attr:`payload`, :attr:`data`, :attr:`data_json`) is made from the
    others once, when first asked for, and shared by every subscriber.
    """

    __slots__ = (
        "_data",
        "_json",
        "_payload",
        "_views",
        "id",
        "job_id",
        "owner",
        "published_at",
        "type",
    )

    def __init__(
        self,
        id: EventId | None,
        type: EventType,
        data: JsonObject | None = None,
        job_id: str | None = None,
        owner: str | None = None,
        json_text: str | None = None,
        *,
        payload: AnyEventData | None = None,
    ) -> None:
        if data is None and json_text is None and payload is None:
            raise ValueError("an event needs its data, its JSON or its payload")
        self.id = id
        self.type = type
        self.job_id = job_id
        self.owner = owner
        self._data = data
        self._json = json_text
        self._payload = payload
        self._views: dict[Callable[[Event], Any], Any] | None = None
        #: ``time.perf_counter()`` when it was offered to live subscribers (``None``
        #: for an event read back from storage): what delivery lag is measured from.
        self.published_at: float | None = None

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, type={self.type.value!r}, job_id={self.job_id!r})"

    @property
    def payload(self) -> AnyEventData:
        """The typed payload (validated when the event came back from storage)."""
        if self._payload is None:
            self._payload = parse_event_data(self.type, self.data_json)
        return self._payload

    @property
    def data(self) -> JsonObject:
        """The payload as the wire's JSON object (camelCase keys)."""
        if self._data is None:
            if self._json is not None:
                self._data = json.loads(self._json)
            else:
                assert self._payload is not None
                self._data = dump_wire(self._payload)
        return self._data

    @property
    def data_json(self) -> str:
        """``data`` as one line of compact JSON, encoded once and shared by every view."""
        if self._json is None:
            if self._payload is not None:
                self._json = dump_json(self._payload)
            else:
                self._json = json.dumps(self._data, separators=(",", ":"), ensure_ascii=False)
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
    payload = ErrorData.build(job_id=job_id, code=code, message=message)
    return Event(None, EventType.ERROR, job_id=job_id, payload=payload)


#: The event type of each payload model.
EVENT_TYPE_OF: dict[type[AnyEventData], EventType] = {
    model: event_type for event_type, model in EVENT_DATA_MODELS.items()
}
