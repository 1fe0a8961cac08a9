"""Params validation shared by the built-in pipelines (pydantic models, camelCase)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
from pydantic.alias_generators import to_camel

from ..runtime import InvalidJobRequest


class ParamsModel(pydantic.BaseModel):
    """Base of every params model: camelCase names, unknown names refused, no coercion.

    Only the camelCase names of the contract are accepted: a Python-style
    name such as ``duration_seconds`` is an unknown param, not an alias.
    """

    model_config = pydantic.ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        frozen=True,
    )


#: Problems an ``InvalidJobRequest`` lists at most (a huge params object must not
#: make a huge answer).
MAX_PROBLEMS = 20

ModelT = TypeVar("ModelT", bound=ParamsModel)


def validate_params(model: type[ModelT], pipeline: str, params: Mapping[str, Any]) -> ModelT:
    """Validate ``params`` against ``model``; raise ``InvalidJobRequest`` listing every problem."""
    if not isinstance(params, Mapping):
        raise InvalidJobRequest(
            "params must be a JSON object", [{"field": "params", "message": "not an object"}]
        )
    try:
        return model.model_validate(dict(params))
    except pydantic.ValidationError as exc:
        errors = [
            {
                "field": ".".join(["params", *(str(part) for part in error["loc"])]),
                "message": error["msg"],
            }
            for error in exc.errors()[:MAX_PROBLEMS]
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        if exc.error_count() > 5:
            summary += f"; and {exc.error_count() - 5} more"
        raise InvalidJobRequest(
            f"invalid params for pipeline {pipeline}: {summary}", errors
        ) from None
