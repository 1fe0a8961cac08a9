"""Tests for the sans-IO Server-Sent Events codec (WHATWG HTML section 9.2)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aura_actors.protocol import (
    SseComment,
    SseDecoder,
    SseEncoder,
    SseMessage,
    SseProtocolError,
)


def decode(stream: bytes) -> list[SseMessage]:
    dec = SseDecoder()
    out = dec.feed(stream)
    out += dec.end()
    return out


def decode_bytewise(stream: bytes) -> list[SseMessage]:
    dec = SseDecoder()
    out: list[SseMessage] = []
    for i in range(len(stream)):
        out += dec.feed(stream[i : i + 1])
    out += dec.end()
    return out


def msg(data: str, event: str = "message", last_event_id: str = "") -> SseMessage:
    return SseMessage(event=event, data=data, last_event_id=last_event_id)


def normalise_newlines(text: str) -> str:
    return re.sub(r"\r\n|\r", "\n", text)


# --------------------------------------------------------------------------- #
# WHATWG spec examples


def test_spec_example_multiple_data_lines() -> None:
    assert decode(b"data: YHOO\ndata: +2\ndata: 10\n\n") == [msg("YHOO\n+2\n10")]


def test_spec_example_ids_and_comments() -> None:
    stream = (
        b": test stream\n"
        b"\n"
        b"data: first event\n"
        b"id: 1\n"
        b"\n"
        b"data:second event\n"
        b"id\n"
        b"\n"
        b"data:  third event\n"
        b"\n"
    )
    assert decode(stream) == [
        msg("first event", last_event_id="1"),
        msg("second event", last_event_id=""),
        msg(" third event", last_event_id=""),
    ]


def test_spec_example_bare_data_fields() -> None:
    stream = b"data\n\ndata\ndata\n\ndata:"
    # The last block is discarded: it is not followed by a blank line.
    assert decode(stream) == [msg(""), msg("\n")]


def test_spec_example_space_after_colon_is_optional() -> None:
    assert decode(b"data:test\n\ndata: test\n\n") == [msg("test"), msg("test")]


def test_spec_example_event_types() -> None:
    stream = (
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n"
    )
    assert decode(stream) == [
        msg("73857293", event="add"),
        msg("2153", event="remove"),
        msg("113411", event="add"),
    ]


# --------------------------------------------------------------------------- #
# Decoder rules


def test_utf8_multibyte_split_across_chunks() -> None:
    raw = "data: é€😀\n\n".encode()
    dec = SseDecoder()
    out: list[SseMessage] = []
    # Cuts inside the 2-byte "é", the 3-byte "€" and the 4-byte "😀".
    out += dec.feed(raw[:7])
    out += dec.feed(raw[7:9])
    out += dec.feed(raw[9:12])
    out += dec.feed(raw[12:])
    assert out == [msg("é€😀")]


def test_invalid_utf8_replaced_with_replacement_character() -> None:
    assert decode(b"data: a\xffb\xc3(\n\n") == [msg("a\ufffdb\ufffd(")]


def test_truncated_utf8_sequence_before_newline_is_replaced() -> None:
    # An incomplete 4-byte sequence is one maximal subpart -> one U+FFFD.
    assert decode(b"data: \xf0\x9f\x98\n\n") == [msg("\ufffd")]
    assert decode_bytewise(b"data: \xf0\x9f\x98\n\n") == [msg("\ufffd")]


def test_leading_bom_is_stripped() -> None:
    assert decode(b"\xef\xbb\xbfdata: x\n\n") == [msg("x")]


def test_leading_bom_split_across_chunks() -> None:
    dec = SseDecoder()
    assert dec.feed(b"\xef") == []
    assert dec.feed(b"\xbb") == []
    assert dec.feed(b"\xbfdata: x\n\n") == [msg("x")]


def test_only_one_bom_is_stripped() -> None:
    # A second BOM becomes part of the field name "\ufeffdata", an unknown field.
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n") == []
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbf\ndata: y\n\n") == [msg("y")]


def test_bom_not_at_stream_start_is_kept() -> None:
    assert decode(b"data: \xef\xbb\xbfx\n\n") == [msg("\ufeffx")]


@pytest.mark.parametrize("eol", [b"\r\n", b"\r", b"\n"])
def test_line_endings(eol: bytes) -> None:
    stream = b"event: e" + eol + b"data: a" + eol + b"data: b" + eol + eol
    assert decode(stream) == [msg("a\nb", event="e")]
    assert decode_bytewise(stream) == [msg("a\nb", event="e")]


def test_mixed_line_endings() -> None:
    assert decode(b"data: a\rdata: b\r\ndata: c\n\r\n") == [msg("a\nb\nc")]


def test_crlf_split_across_chunks_is_one_line_ending() -> None:
    dec = SseDecoder()
    assert dec.feed(b"data: a\r") == []
    # The LF belongs to the preceding CR: it is not a blank line.
    assert dec.feed(b"\ndata: b\r") == []
    assert dec.feed(b"\n") == []
    assert dec.feed(b"\r") == [msg("a\nb")]
    assert dec.feed(b"\n") == []


def test_crlf_split_with_empty_chunk_between() -> None:
    dec = SseDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"") == []
    assert dec.feed(b"\n") == []
    assert dec.feed(b"\r\n") == [msg("a")]


def test_cr_lf_lf_is_two_line_endings() -> None:
    dec = SseDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\n\n") == [msg("a")]


def test_cr_dispatches_without_waiting_for_next_chunk() -> None:
    dec = SseDecoder()
    assert dec.feed(b"data: a\r\r") == [msg("a")]


def test_cr_then_multibyte_start_in_next_chunk() -> None:
    dec = SseDecoder()
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\xc3") == []  # decodes to nothing yet
    assert dec.feed(b"\xa9: x\n") == []  # "é: x" is an unknown field, not a blank line
    assert dec.feed(b"data: b\n\n") == [msg("a\nb")]


def test_other_unicode_line_separators_are_not_line_endings() -> None:
    data = "a\x0bb\x0cc\x1cd\x85e\u2028f\u2029g"
    assert decode(f"data: {data}\n\n".encode()) == [msg(data)]


def test_comment_lines_are_ignored_and_counted() -> None:
    dec = SseDecoder()
    assert dec.feed(b": keep-alive\n\n:\n:no space\ndata: x\n: mid\n\n") == [msg("x")]
    assert dec.comments == 4


def test_feed_events_returns_comments_in_order() -> None:
    dec = SseDecoder()
    events = dec.feed_events(b": hello\ndata: x\n\n:  two spaces\n:\n")
    assert events == [
        SseComment("hello"),
        msg("x"),
        SseComment(" two spaces"),
        SseComment(""),
    ]
    assert dec.comments == 3


def test_comment_blank_line_does_not_dispatch_message() -> None:
    assert decode(b": keep-alive\n\n") == []


def test_field_without_colon_is_name_with_empty_value() -> None:
    assert decode(b"data\n\n") == [msg("")]
    assert decode(b"event\ndata: x\n\n") == [msg("x")]  # empty type -> "message"
    assert decode(b"id: 5\nid\ndata: x\n\n") == [msg("x", last_event_id="")]


def test_only_one_leading_space_removed() -> None:
    assert decode(b"data:  two\n\n") == [msg(" two")]
    assert decode(b"data:\ttab\n\n") == [msg("\ttab")]
    assert decode(b"event:  e\ndata: x\n\n") == [msg("x", event=" e")]


def test_only_first_colon_splits() -> None:
    assert decode(b"data: a: b:c\n\n") == [msg("a: b:c")]


def test_field_names_are_case_sensitive_and_unknown_fields_ignored() -> None:
    stream = b"Data: no\nfoo: bar\ndata : no\n data: no\nDATA\ndata: yes\n\n"
    assert decode(stream) == [msg("yes")]


def test_unknown_fields_only_block_dispatches_nothing() -> None:
    assert decode(b"foo: bar\n\n") == []


def test_id_with_null_is_ignored() -> None:
    dec = SseDecoder()
    assert dec.feed(b"id: 1\n\n") == []
    assert dec.last_event_id == "1"
    assert dec.feed(b"id: a\x00b\ndata: x\n\n") == [msg("x", last_event_id="1")]
    assert dec.last_event_id == "1"


def test_empty_id_resets_last_event_id() -> None:
    dec = SseDecoder()
    assert dec.feed(b"id: 7\ndata: a\n\n") == [msg("a", last_event_id="7")]
    assert dec.feed(b"id:\ndata: b\n\n") == [msg("b", last_event_id="")]
    assert dec.last_event_id == ""


def test_last_event_id_persists_across_messages() -> None:
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\n"
    assert decode(stream) == [
        msg("a", last_event_id="1"),
        msg("b", last_event_id="1"),
        msg("c", last_event_id="2"),
    ]


def test_id_in_later_line_of_same_block_applies_to_that_event() -> None:
    assert decode(b"data: a\nid: 3\n\n") == [msg("a", last_event_id="3")]


def test_initial_last_event_id_from_constructor() -> None:
    dec = SseDecoder(last_event_id="42")
    assert dec.feed(b"data: a\n\n") == [msg("a", last_event_id="42")]


def test_id_value_keeps_whitespace_after_first_space() -> None:
    assert decode(b"id:  x \ndata: a\n\n") == [msg("a", last_event_id=" x ")]


def test_data_lines_joined_and_trailing_newline_removed() -> None:
    assert decode(b"data: a\ndata:\ndata: b\ndata:\n\n") == [msg("a\n\nb\n")]


def test_empty_data_buffer_dispatches_nothing_and_resets_event_type() -> None:
    dec = SseDecoder()
    assert dec.feed(b"event: ping\n\n") == []
    assert dec.feed(b"data: x\n\n") == [msg("x", event="message")]


def test_event_type_reset_after_each_dispatch() -> None:
    assert decode(b"event: a\ndata: 1\n\ndata: 2\n\n") == [msg("1", event="a"), msg("2")]


def test_default_event_type_is_message() -> None:
    assert decode(b"data: x\n\n") == [msg("x", event="message")]
    assert decode(b"event:\ndata: x\n\n") == [msg("x", event="message")]


def test_last_event_field_wins() -> None:
    assert decode(b"event: a\nevent: b\ndata: x\n\n") == [msg("x", event="b")]


def test_retry_with_ascii_digits_sets_reconnection_time() -> None:
    dec = SseDecoder()
    assert dec.retry is None
    assert dec.feed(b"retry: 1000\n\n") == []
    assert dec.retry == 1000
    dec.feed(b"retry:0\n")
    assert dec.retry == 0


@pytest.mark.parametrize(
    "value",
    [b"", b" ", b"10 ", b"1.5", b"-1", b"+1", b"1e3", b"abc", "\u0661\u0662".encode()],
)
def test_invalid_retry_is_ignored(value: bytes) -> None:
    dec = SseDecoder()
    dec.feed(b"retry: 500\n")
    dec.feed(b"retry: " + value + b"\n\n")
    assert dec.retry == 500


def test_retry_does_not_dispatch_or_affect_messages() -> None:
    assert decode(b"retry: 10\ndata: x\n\n") == [msg("x")]


def test_incomplete_event_at_eof_is_discarded() -> None:
    dec = SseDecoder()
    assert dec.feed(b"data: a\n\ndata: b\n") == [msg("a")]
    assert dec.end() == []


def test_incomplete_line_at_eof_is_discarded() -> None:
    dec = SseDecoder()
    assert dec.feed(b"data: a\n\ndata: b") == [msg("a")]
    assert dec.end() == []


def test_trailing_cr_at_eof_is_a_line_ending() -> None:
    assert decode(b"data: a\n\r") == [msg("a")]


def test_end_is_idempotent_and_feed_after_end_raises() -> None:
    dec = SseDecoder()
    assert dec.end() == []
    assert dec.end() == []
    with pytest.raises(RuntimeError):
        dec.feed(b"data: x\n\n")


def test_long_lines() -> None:
    data = "x" * 1_000_000
    stream = f"data: {data}\n\n".encode()
    assert decode(stream) == [msg(data)]
    dec = SseDecoder()
    out: list[SseMessage] = []
    for i in range(0, len(stream), 7):
        out += dec.feed(stream[i : i + 7])
    assert out == [msg(data)]


SAMPLE_STREAMS = [
    b"data: YHOO\ndata: +2\ndata: 10\n\n",
    b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
    b"data\n\ndata\ndata\n\ndata:",
    b"\xef\xbb\xbfevent: e\r\nid: \xc3\xa9\r\ndata: \xf0\x9f\x98\x80\r\rdata: z\r\n\r\n",
    b"retry: 7\rdata: a\xff\r\n:c\r\n\r\nid: x\x00\ndata\r\r",
]


@pytest.mark.parametrize("stream", SAMPLE_STREAMS)
def test_byte_at_a_time_equals_whole(stream: bytes) -> None:
    whole = SseDecoder()
    whole_out = whole.feed_events(stream)
    single = SseDecoder()
    single_out: list[SseMessage | SseComment] = []
    for i in range(len(stream)):
        single_out += single.feed_events(stream[i : i + 1])
    assert single_out == whole_out
    assert (single.last_event_id, single.retry, single.comments) == (
        whole.last_event_id,
        whole.retry,
        whole.comments,
    )


@given(
    stream=st.one_of(
        st.sampled_from(SAMPLE_STREAMS),
        st.binary(max_size=200),
        st.lists(
            st.sampled_from(
                [
                    b"data",
                    b"data:",
                    b": ",
                    b"id",
                    b"event",
                    b"retry",
                    b"1",
                    b"x",
                    b"\xc3",
                    b"\xa9",
                    b"\r",
                    b"\n",
                    b"\r\n",
                    b"\xef\xbb\xbf",
                    b"\x00",
                    b"\xff",
                ]
            ),
            max_size=60,
        ).map(b"".join),
    ),
    data=st.data(),
)
def test_arbitrary_chunking_equals_whole(stream: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    whole = SseDecoder()
    expected = whole.feed_events(stream)
    split = SseDecoder()
    got: list[SseMessage | SseComment] = []
    for chunk in chunks:
        got += split.feed_events(chunk)
    assert got == expected
    assert (split.last_event_id, split.retry) == (whole.last_event_id, whole.retry)
    assert decode_bytewise(stream) == [m for m in expected if isinstance(m, SseMessage)]


# --------------------------------------------------------------------------- #
# Encoder


def test_encode_retry() -> None:
    assert SseEncoder().retry(1000) == b"retry: 1000\n\n"
    assert SseEncoder().retry(0) == b"retry: 0\n\n"


@pytest.mark.parametrize("bad", [-1, True, 1.5, "10"])
def test_encode_retry_invalid(bad: object) -> None:
    with pytest.raises(SseProtocolError):
        SseEncoder().retry(bad)  # type: ignore[arg-type]


def test_encode_comment() -> None:
    enc = SseEncoder()
    assert enc.comment("keep-alive") == b": keep-alive\n\n"
    assert enc.comment("a\nb\r\nc\rd") == b": a\n: b\n: c\n: d\n\n"
    assert enc.comment("") == b": \n\n"


def test_encoded_comment_decodes_to_comments_only() -> None:
    dec = SseDecoder()
    events = dec.feed_events(SseEncoder().comment("a\nb"))
    assert events == [SseComment("a"), SseComment("b")]


def test_encode_event_field_order() -> None:
    enc = SseEncoder()
    assert enc.event("hello") == b"data: hello\n\n"
    assert enc.event("hi", event="greet", id="7") == b"id: 7\nevent: greet\ndata: hi\n\n"
    assert enc.event("", id="") == b"id: \ndata: \n\n"


def test_encode_event_splits_data_on_every_line_terminator() -> None:
    enc = SseEncoder()
    assert enc.event("a\nb\r\nc\rd") == b"data: a\ndata: b\ndata: c\ndata: d\n\n"
    assert enc.event("a\n") == b"data: a\ndata: \n\n"
    assert enc.event("\r\n") == b"data: \ndata: \n\n"


def test_encode_event_is_utf8() -> None:
    assert SseEncoder().event("é😀", event="ü") == "event: ü\ndata: é😀\n\n".encode()


def test_encode_does_not_split_on_other_unicode_separators() -> None:
    data = "a\x0bb\u2028c\x85d"
    encoded = SseEncoder().event(data)
    assert encoded.count(b"data:") == 1
    assert decode(encoded) == [msg(data)]


@pytest.mark.parametrize("bad_id", ["a\nb", "a\rb", "a\0b", "\n"])
def test_encode_invalid_id_raises(bad_id: str) -> None:
    with pytest.raises(SseProtocolError):
        SseEncoder().event("x", id=bad_id)


@pytest.mark.parametrize("bad_event", ["", "a\nb", "a\rb", "\r\n"])
def test_encode_invalid_event_raises(bad_event: str) -> None:
    with pytest.raises(SseProtocolError):
        SseEncoder().event("x", event=bad_event)


def test_protocol_error_is_value_error() -> None:
    assert issubclass(SseProtocolError, ValueError)


def test_encode_unencodable_text_raises_protocol_error() -> None:
    with pytest.raises(SseProtocolError):
        SseEncoder().event("\ud800")


# --------------------------------------------------------------------------- #
# Round trip

datas = st.text()
event_names = st.text(min_size=1).filter(lambda s: "\r" not in s and "\n" not in s)
ids = st.text().filter(lambda s: not any(c in s for c in "\0\r\n"))


@given(data=datas, event=st.none() | event_names, id=st.none() | ids)
def test_round_trip_single(data: str, event: str | None, id: str | None) -> None:
    encoded = SseEncoder().event(data, event=event, id=id)
    dec = SseDecoder()
    out = dec.feed(encoded)
    assert dec.end() == []
    assert out == [
        SseMessage(
            event=event if event is not None else "message",
            data=normalise_newlines(data),
            last_event_id=id if id is not None else "",
        )
    ]


@given(
    items=st.lists(
        st.tuples(datas, st.none() | event_names, st.none() | ids, st.booleans()),
        max_size=8,
    ),
    retry=st.none() | st.integers(min_value=0, max_value=10**12),
    data=st.data(),
)
def test_round_trip_concatenated_and_randomly_split(
    items: list[tuple[str, str | None, str | None, bool]],
    retry: int | None,
    data: st.DataObject,
) -> None:
    enc = SseEncoder()
    stream = b""
    expected: list[SseMessage] = []
    last_id = ""
    if retry is not None:
        stream += enc.retry(retry)
    for text, event, id, with_comment in items:
        if with_comment:
            stream += enc.comment(text)
        stream += enc.event(text, event=event, id=id)
        if id is not None:
            last_id = id
        expected.append(SseMessage(event or "message", normalise_newlines(text), last_id))

    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    dec = SseDecoder()
    got: list[SseMessage] = []
    for chunk in chunks:
        got += dec.feed(chunk)
    got += dec.end()
    assert got == expected
    assert dec.retry == retry
    assert dec.last_event_id == last_id
