"""The OpenAPI document and the protocol models agree.

The schemas the web layer exposes (request, snapshot, listing, error body,
health) are compared with the models' own JSON schemas, with every ``$ref``
resolved and the prose (titles, descriptions, examples) left out.

The web layer documents its routes with the protocol models themselves, so
these hold by construction; they fail if a route is documented otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field
from quart_schema.conversion import model_schema
from support.servers import run_server

from aura_actors.protocol import CreateJobRequest, ErrorBody, Health, JobList, JobSnapshot
from aura_actors.web import ServerSettings

Mode = Literal["validation", "serialization"]
_PROSE = frozenset({"title", "description", "examples"})

#: (path, method, status or "request", the model, its schema mode).
EXPOSED: list[tuple[str, str, str, type[BaseModel], Mode]] = [
    ("/api/jobs", "post", "request", CreateJobRequest, "validation"),
    ("/api/jobs", "post", "202", JobSnapshot, "serialization"),
    ("/api/jobs", "post", "422", ErrorBody, "serialization"),
    ("/api/jobs", "get", "200", JobList, "serialization"),
    ("/api/jobs/{job_id}", "get", "200", JobSnapshot, "serialization"),
    ("/api/jobs/{job_id}", "get", "404", ErrorBody, "serialization"),
    ("/api/jobs/{job_id}/cancel", "post", "202", JobSnapshot, "serialization"),
    ("/api/health", "get", "200", Health, "serialization"),
]


def resolve(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every ``$ref`` replaced by its target and the prose removed."""
    if isinstance(schema, list):
        return [resolve(item, definitions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = definitions[schema["$ref"].rsplit("/", 1)[-1]]
        rest = {key: value for key, value in schema.items() if key != "$ref"}
        return resolve({**target, **rest}, definitions)
    cleaned: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _PROSE or key == "$defs":
            continue
        if key == "properties":  # names, not keywords: a property may be called "title"
            cleaned[key] = {name: resolve(prop, definitions) for name, prop in value.items()}
        else:
            cleaned[key] = resolve(value, definitions)
    return cleaned


def model_wire_schema(model: type[BaseModel], mode: Mode) -> Any:
    """The model's schema as the web layer would document it, resolved."""
    schema = model.model_json_schema(mode=mode)
    return resolve(schema, schema.get("$defs", {}))


def documented_schema(document: dict[str, Any], path: str, method: str, status: str) -> Any:
    operation = document["paths"][path][method]
    if status == "request":
        content = operation["requestBody"]["content"]
    else:
        content = operation["responses"][status]["content"]
    schema = content["application/json"]["schema"]
    return resolve(schema, document.get("components", {}).get("schemas", {}))


@pytest.fixture
async def document(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    async with (
        run_server(ServerSettings(), data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        yield response.json()


@pytest.mark.parametrize(("path", "method", "status", "model", "mode"), EXPOSED)
async def test_the_document_exposes_the_protocol_models(
    document: dict[str, Any],
    path: str,
    method: str,
    status: str,
    model: type[BaseModel],
    mode: Mode,
) -> None:
    documented = documented_schema(document, path, method, status)
    if (path, method, status) == ("/api/jobs", "post", "request"):
        # The one addition of the web layer: the registered pipelines, as an enum.
        assert documented["properties"]["pipeline"].pop("enum") == ["synthetic", "video"]
    assert documented == model_wire_schema(model, mode)


# -- the comparison itself, so that the test above can be trusted -------------------------


class _Inner(BaseModel):
    model_config = ConfigDict(title="Another title")
    size_bytes: int = Field(ge=0, description="prose")


class _Outer(BaseModel):
    inner: _Inner
    items: list[_Inner]
    maybe: _Inner | None = None


def _as_quart_schema_documents(model: type[BaseModel], mode: Mode) -> dict[str, Any]:
    """A one-route document built the way quart-schema builds it (``$defs`` hoisted)."""
    schema = model_schema(model, schema_mode=mode)
    components = schema.pop("$defs", {})
    return {
        "paths": {
            "/x": {
                "get": {"responses": {"200": {"content": {"application/json": {"schema": schema}}}}}
            }
        },
        "components": {"schemas": components},
    }


@pytest.mark.parametrize(
    ("model", "mode"),
    [(_Outer, "serialization"), (CreateJobRequest, "validation")]
    + [(model, "serialization") for model in (JobSnapshot, JobList, ErrorBody, Health)],
)
def test_a_model_documented_by_quart_schema_compares_equal(
    model: type[BaseModel], mode: Mode
) -> None:
    document = _as_quart_schema_documents(model, mode)
    resolved = documented_schema(document, "/x", "get", "200")
    assert resolved == model_wire_schema(model, mode)
    assert "$ref" not in repr(resolved) and "title" not in resolved


def test_a_different_model_compares_unequal() -> None:
    document = _as_quart_schema_documents(_Outer, "serialization")
    assert documented_schema(document, "/x", "get", "200") != model_wire_schema(
        _Inner, "serialization"
    )
