"""What every route needs: the runtime, the settings, and who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field

from quart import request
from quart.wrappers import Request, Websocket

from ..runtime import EventId, Runtime
from ._auth import Authenticator
from ._errors import ApiError
from ._metrics import ServerMetrics
from ._settings import ServerSettings


@dataclass(frozen=True, slots=True)
class ServerContext:
    """The server's shared state, handed to each group of routes."""

    runtime: Runtime
    settings: ServerSettings
    authenticator: Authenticator
    metrics: ServerMetrics = field(default_factory=ServerMetrics)

    def current_user(self) -> str | None:
        """The user the current request acts for (``None`` with auth off); raises 401."""
        return self.user_of(request)

    def user_of(self, connection: Request | Websocket) -> str | None:
        """The user a request or WebSocket acts for: its ``Authorization: Bearer`` token, or
        its ``access_token`` query value (for EventSource and WebSocket); raises 401."""
        return self.authenticator.user_for(
            connection.headers.get("Authorization"), connection.args.get("access_token")
        )


def parse_last_event_id(header: str | None, query: str | None) -> EventId | None:
    """The resume point: header ``Last-Event-ID``, else query ``lastEventId``; 400 if malformed."""
    raw = header if header else query
    if raw is None or raw.strip() == "":
        return None
    try:
        return EventId.parse(raw)
    except ValueError:
        raise ApiError(
            400,
            "invalid_last_event_id",
            f"malformed last event id {raw[:64]!r}: expected '<unixMillis>-<counter>'",
        ) from None
