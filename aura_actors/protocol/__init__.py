"""Wire protocols. Everything here is sans-IO: bytes in, events out and back.

:mod:`aura_actors.protocol` currently provides a Server-Sent Events codec
(:class:`SseEncoder`, :class:`SseDecoder`) following the WHATWG HTML spec.
"""

from aura_actors.protocol._sse import (
    SseComment,
    SseDecoder,
    SseEncoder,
    SseMessage,
    SseProtocolError,
)

__all__ = ["SseComment", "SseDecoder", "SseEncoder", "SseMessage", "SseProtocolError"]
