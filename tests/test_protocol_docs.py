"""The examples in docs/protocol.md parse into the protocol models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from aura_actors.protocol import (
    ClientMessage,
    CreateJobRequest,
    ErrorBody,
    EventMessage,
    Health,
    JobList,
    JobLogs,
    JobSnapshot,
    SseDecoder,
    SseMessage,
    parse_event_data,
)

PROTOCOL = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
_FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`(\{[^`]*\})`")

#: The models a JSON example of the page may be an instance of.
WIRE_MODELS: tuple[type[BaseModel], ...] = (
    JobSnapshot,
    JobList,
    CreateJobRequest,
    ErrorBody,
    Health,
    JobLogs,
    EventMessage,
    ClientMessage,
)
#: Inline JSON of the page that is not a wire body (the auth tokens file).
NOT_WIRE = {'{"tokens": {"<token>": "<user>"}}'}


def wire_keys(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def as_wire_model(example: dict[str, Any]) -> BaseModel:
    """The one model ``example`` is an instance of: it validates, with no key unknown to it."""
    fits = []
    for model in WIRE_MODELS:
        if not set(example) <= wire_keys(model):
            continue
        try:
            fits.append(model.model_validate(example))
        except ValidationError:
            continue
    assert len(fits) == 1, (example, fits)
    return fits[0]


def fenced_blocks() -> list[tuple[str, str]]:
    return [(m["lang"], m["body"]) for m in _FENCE.finditer(PROTOCOL.read_text(encoding="utf-8"))]


def json_examples() -> list[str]:
    blocks = [body for lang, body in fenced_blocks() if lang == "json"]
    inline = _INLINE.findall(PROTOCOL.read_text(encoding="utf-8"))
    return blocks + [text for text in inline if text not in NOT_WIRE and _is_json(text)]


def sse_examples() -> list[str]:
    return [body for lang, body in fenced_blocks() if not lang and body.startswith("id: ")]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_the_page_has_examples_of_each_kind() -> None:
    kinds = {type(as_wire_model(json.loads(text))) for text in json_examples()}
    assert {JobSnapshot, ErrorBody, ClientMessage} <= kinds
    assert sse_examples()


@pytest.mark.parametrize("text", json_examples())
def test_json_examples_parse_into_the_models(text: str) -> None:
    as_wire_model(json.loads(text))


@pytest.mark.parametrize("text", sse_examples())
def test_sse_examples_decode_into_event_payloads(text: str) -> None:
    messages = SseDecoder().feed(text.encode())
    assert messages and all(isinstance(message, SseMessage) for message in messages)
    for message in messages:
        data = parse_event_data(message.event, message.data)
        assert json.loads(message.data) == data.model_dump(mode="json", by_alias=True)
