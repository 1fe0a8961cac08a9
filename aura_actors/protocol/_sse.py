"""A sans-IO codec for Server-Sent Events (``text/event-stream``).

This follows the WHATWG HTML Living Standard, section 9.2 "Server-sent events",
subsections "Parsing an event stream" and "Interpreting an event stream".

Nothing in this module does I/O: the :class:`SseDecoder` is fed bytes and returns
events, and the :class:`SseEncoder` is given events and returns bytes. Moving the
bytes over a socket, an HTTP response body or anything else is the caller's job.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["SseComment", "SseDecoder", "SseEncoder", "SseMessage", "SseProtocolError"]

# The only three line terminators of an event stream (CRLF, lone LF, lone CR).
# ``str.splitlines`` must not be used: it also splits on U+000B, U+000C, U+001C-1E,
# U+0085, U+2028 and U+2029, which are ordinary characters in an event stream.
_LINE_TERMINATOR = re.compile(r"\r\n|\r|\n")
_CR_OR_LF = re.compile(r"[\r\n]")
_ASCII_DIGITS = re.compile(r"[0-9]+")


class SseProtocolError(ValueError):
    """Raised by :class:`SseEncoder` when asked to encode something that cannot be
    represented faithfully in an event stream (e.g. an ``id`` containing a newline).
    """


@dataclass(frozen=True, slots=True)
class SseMessage:
    """One dispatched event.

    :ivar event: the event type; ``"message"`` when the event had no (or an empty)
        ``event`` field.
    :ivar data: the data buffer: the values of all ``data`` fields joined with ``"\\n"``.
    :ivar last_event_id: the decoder's last-event-id buffer at the time of dispatch
        (``""`` if no ``id`` field has been seen or the last one was empty). Per the
        spec it persists across events until the next ``id`` field.
    """

    event: str
    data: str
    last_event_id: str


@dataclass(frozen=True, slots=True)
class SseComment:
    """A comment line (a line starting with ``":"``), typically a keep-alive.

    Only returned by :meth:`SseDecoder.feed_events`. The spec says comment lines are
    ignored; they are surfaced so that a client can notice that the connection is
    alive. :ivar text: the rest of the line after the colon, with one leading space
    removed (so ``": keep-alive"`` gives ``"keep-alive"``).
    """

    text: str


class SseDecoder:
    """Incremental event-stream parser: bytes in, :class:`SseMessage` objects out.

    Does no I/O. Feed it the raw bytes of the response body as they arrive, in chunks
    split at arbitrary points (down to one byte at a time; the result is the same as
    for a single chunk), then call :meth:`end` once the stream is closed.

    Handles, per the spec: incremental UTF-8 decoding with invalid bytes replaced by
    U+FFFD, one leading BOM stripped, CRLF / LF / CR line endings (including a CR and
    an LF in different chunks, which form one line ending), comments, fields without
    a colon, the single optional space after the colon, unknown fields (ignored),
    ``id`` values containing U+0000 (ignored) and ``retry`` values that are not all
    ASCII digits (ignored).

    Attributes:

    ``last_event_id``
        The last-event-id buffer. Updated as soon as an ``id`` field is parsed. It
        may be seeded through the constructor when reconnecting with a
        ``Last-Event-ID`` header, so that events of the new stream carry it.
    ``retry``
        The reconnection time in milliseconds from the latest valid ``retry`` field,
        or ``None`` if there was none.
    ``comments``
        The number of comment lines seen so far (keep-alives).
    """

    def __init__(self, last_event_id: str = "") -> None:
        self.last_event_id: str = last_event_id
        self.retry: int | None = None
        self.comments: int = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._bom_checked = False
        self._skip_lf = False  # the previous character was a CR that ended a line
        self._line_parts: list[str] = []
        self._data_lines: list[str] = []  # data buffer, without the LFs
        self._event_type = ""
        self._ended = False

    def feed(self, chunk: bytes) -> list[SseMessage]:
        """Parse *chunk* and return the messages it completes (possibly none).

        Comments only increment :attr:`comments`; use :meth:`feed_events` to receive
        them. Raises :class:`RuntimeError` if called after :meth:`end`.
        """
        return [ev for ev in self.feed_events(chunk) if isinstance(ev, SseMessage)]

    def feed_events(self, chunk: bytes) -> list[SseMessage | SseComment]:
        """Like :meth:`feed`, but also return comment lines as :class:`SseComment`,
        in stream order with the messages.
        """
        if self._ended:
            raise RuntimeError("SseDecoder.feed() called after end()")
        text = self._utf8.decode(chunk)
        if not self._bom_checked and text:
            self._bom_checked = True
            if text[0] == "\ufeff":
                text = text[1:]
        out: list[SseMessage | SseComment] = []
        self._split_lines(text, out)
        return out

    def end(self) -> list[SseMessage]:
        """Signal the end of the stream.

        Per the spec, pending data is discarded: an event whose terminating blank
        line has not been received is not dispatched. Hence this always returns
        ``[]``; it returns a list for symmetry with :meth:`feed`. Idempotent.
        """
        if not self._ended:
            self._ended = True
            self._utf8.decode(b"", final=True)  # flush; leftovers are discarded
            self._line_parts.clear()
            self._data_lines.clear()
            self._event_type = ""
        return []

    # -- internals -------------------------------------------------------------

    def _split_lines(self, text: str, out: list[SseMessage | SseComment]) -> None:
        pos = 0
        n = len(text)
        if self._skip_lf and n:
            self._skip_lf = False
            if text[0] == "\n":
                pos = 1
        while pos < n:
            m = _CR_OR_LF.search(text, pos)
            if m is None:
                self._line_parts.append(text[pos:])
                return
            eol = m.start()
            if self._line_parts:
                self._line_parts.append(text[pos:eol])
                line = "".join(self._line_parts)
                self._line_parts.clear()
            else:
                line = text[pos:eol]
            pos = eol + 1
            if text[eol] == "\r":
                # A CR ends the line right away; an LF right after it is part of
                # the same line ending, even if it only arrives in the next chunk.
                if pos < n:
                    if text[pos] == "\n":
                        pos += 1
                else:
                    self._skip_lf = True
            self._process_line(line, out)

    def _process_line(self, line: str, out: list[SseMessage | SseComment]) -> None:
        if not line:
            self._dispatch(out)
            return
        if line[0] == ":":
            self.comments += 1
            text = line[1:]
            out.append(SseComment(text[1:] if text.startswith(" ") else text))
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event_type = value
        elif name == "data":
            self._data_lines.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and _ASCII_DIGITS.fullmatch(value):
            self.retry = int(value)
        # Any other field name, or a retry value that is not all ASCII digits, is ignored.

    def _dispatch(self, out: list[SseMessage | SseComment]) -> None:
        if not self._data_lines:
            self._event_type = ""
            return
        data = "\n".join(self._data_lines)  # == buffer minus its final LF
        out.append(SseMessage(self._event_type or "message", data, self.last_event_id))
        self._data_lines.clear()
        self._event_type = ""


class SseEncoder:
    """Event-stream serializer: events in, UTF-8 ``bytes`` out.

    Does no I/O and holds no state; write the returned bytes to the response body.
    Always uses ``"\\n"`` line endings and UTF-8. Every method returns a complete
    block terminated by a blank line, so outputs can be concatenated freely.
    """

    def event(self, data: str, *, event: str | None = None, id: str | None = None) -> bytes:
        """Encode one event as ``id: ...``, ``event: ...``, ``data: ...`` lines.

        *data* is split on every line terminator (CRLF, CR, LF) into several ``data``
        lines, so a decoder yields *data* with each terminator normalised to
        ``"\\n"``. An empty *data* still produces a message (with empty data).

        Raises :class:`SseProtocolError` if *id* contains ``"\\0"``, ``"\\r"`` or
        ``"\\n"``; if *event* is empty or contains ``"\\r"`` or ``"\\n"``; or if any
        text cannot be encoded as UTF-8 (lone surrogates).
        """
        lines: list[str] = []
        if id is not None:
            if "\0" in id or "\r" in id or "\n" in id:
                raise SseProtocolError(f"SSE id must not contain NUL, CR or LF: {id!r}")
            lines.append(f"id: {id}\n")
        if event is not None:
            if not event:
                raise SseProtocolError("SSE event type must not be empty")
            if "\r" in event or "\n" in event:
                raise SseProtocolError(f"SSE event type must not contain CR or LF: {event!r}")
            lines.append(f"event: {event}\n")
        lines.extend(f"data: {line}\n" for line in _LINE_TERMINATOR.split(data))
        lines.append("\n")
        return _encode("".join(lines))

    def comment(self, text: str) -> bytes:
        """Encode a comment (e.g. a keep-alive): ``b": keep-alive\\n\\n"``.

        Each line of *text* (split on CRLF, CR, LF) is prefixed with ``": "``.
        Decoders ignore comments; the final blank line dispatches nothing.
        """
        body = "".join(f": {line}\n" for line in _LINE_TERMINATOR.split(text))
        return _encode(body + "\n")

    def retry(self, milliseconds: int) -> bytes:
        """Encode a reconnection time: ``retry(1000) == b"retry: 1000\\n\\n"``.

        Raises :class:`SseProtocolError` if *milliseconds* is negative or not an int.
        """
        if isinstance(milliseconds, bool) or not isinstance(milliseconds, int):
            raise SseProtocolError(f"retry must be an int, got {milliseconds!r}")
        if milliseconds < 0:
            raise SseProtocolError(f"retry must be >= 0, got {milliseconds}")
        return b"retry: %d\n\n" % milliseconds


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SseProtocolError(f"text is not encodable as UTF-8: {exc}") from exc
