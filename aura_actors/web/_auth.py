"""Bearer-token auth: a token file maps tokens to users; a job belongs to its creator."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from pathlib import Path

from ._errors import ApiError


class TokenFileError(ValueError):
    """The tokens file is missing, not JSON, or not ``{"tokens": {token: user}}``."""


def load_tokens(path: Path) -> dict[str, str]:
    """Read ``{"tokens": {"<token>": "<user>"}}``; raise :class:`TokenFileError` otherwise."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TokenFileError(f"cannot read auth tokens file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise TokenFileError(f"auth tokens file {path} is not valid JSON: {exc}") from None
    tokens = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(tokens, dict) or not all(
        isinstance(token, str) and token and isinstance(user, str) and user
        for token, user in tokens.items()
    ):
        raise TokenFileError(
            f'auth tokens file {path} must be {{"tokens": {{"<token>": "<user>", ...}}}}'
        )
    return dict(tokens)


class Authenticator:
    """Turns a request's credentials into the user it acts for.

    With no tokens configured, auth is off and everyone is the anonymous
    owner ``None``. Tokens are compared in constant time and never logged.
    """

    def __init__(self, tokens: Mapping[str, str] | None) -> None:
        self._tokens = dict(tokens) if tokens is not None else None

    @property
    def enabled(self) -> bool:
        """Whether requests need a token."""
        return self._tokens is not None

    def user_for(self, authorization: str | None, access_token: str | None) -> str | None:
        """The user of a ``Bearer`` header or ``access_token`` query value; raise 401."""
        if self._tokens is None:
            return None
        token = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        if token is None and access_token:
            token = access_token
        if token is None:
            raise ApiError(401, "unauthorized", "missing bearer token")
        for known, user in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        raise ApiError(401, "unauthorized", "invalid bearer token")
