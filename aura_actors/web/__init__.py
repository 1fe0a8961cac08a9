"""The web layer: a Quart-Trio app serving the runtime over REST, SSE and WebSocket."""

from ._app import MAX_BODY_BYTES, create_app
from ._auth import Authenticator, TokenFileError, load_tokens
from ._hypercorn import UntestedHypercorn
from ._logging import JsonLineFormatter, configure_logging
from ._server import hypercorn_config, serve
from ._settings import ServerSettings, Setting, about
from ._settings_cli import SettingsError, add_arguments, settings_from_args
from ._sse import SSE_HEADERS, encode_event

__all__ = [
    "MAX_BODY_BYTES",
    "SSE_HEADERS",
    "Authenticator",
    "JsonLineFormatter",
    "ServerSettings",
    "Setting",
    "SettingsError",
    "TokenFileError",
    "UntestedHypercorn",
    "about",
    "add_arguments",
    "configure_logging",
    "create_app",
    "encode_event",
    "hypercorn_config",
    "load_tokens",
    "serve",
    "settings_from_args",
]
