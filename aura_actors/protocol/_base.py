"""The base of every wire model, and the one codec that turns models into JSON.

Models are pydantic v2, snake_case in Python and camelCase on the wire
(``alias_generator=to_camel``; both names are accepted when parsing).

Two ways in:

- **decoding** (the client, the web layer reading a request): validate,
  e.g. ``JobSnapshot.model_validate_json(body)`` or :func:`parse_event_data`.
- **the hot path** (the runtime building an event for every tick):
  :meth:`WireModel.build` makes the model without validation, at about the
  cost of a dict literal, and :func:`dump_json` encodes it in one call into
  pydantic-core's serializer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticUndefined

__all__ = ["UtcDateTime", "WireModel", "dump_json", "dump_json_bytes", "dump_wire", "format_time"]

_setattr = object.__setattr__


def format_time(moment: datetime) -> str:
    """A moment as the wire writes it: ISO 8601 UTC with milliseconds, ``...T08:42:55.123Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


#: A moment in time: a :class:`~datetime.datetime` in Python (a naive one is
#: taken as UTC), ISO 8601 UTC text with milliseconds on the wire.
UtcDateTime = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(format_time, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


class WireModel(BaseModel):
    """Base of every model that crosses the wire: camelCase aliases, unknown keys ignored.

    Unknown keys are ignored (a newer server may add fields) unless a model
    says otherwise. In the serialization schema (what the server sends) every
    field is required, since the server always writes it.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_serialization_defaults_required=True,
    )

    _wire_defaults: ClassVar[dict[str, Any]] = {}
    _wire_factories: ClassVar[dict[str, Callable[[], Any]]] = {}
    _wire_extra: ClassVar[bool] = False
    _wire_order: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields
        cls._wire_defaults = {
            name: info.default
            for name, info in fields.items()
            if info.default is not PydanticUndefined
        }
        cls._wire_factories = {
            name: info.default_factory  # type: ignore[misc]
            for name, info in fields.items()
            if info.default_factory is not None
        }
        cls._wire_extra = cls.model_config.get("extra") == "allow"
        cls._wire_order = tuple(fields)

    @classmethod
    def build(cls, **fields: Any) -> Self:
        """Make the model from trusted values, by their Python names, without validation.

        The hot-path constructor: the values are taken as they are (no copy,
        no check of their types), so pass what validation would have
        produced. Fields left out take their defaults; a field that has none,
        or a name that is no field, raises :class:`TypeError`. The JSON has
        the fields in their declared order, whatever the order given. Like
        :meth:`model_construct`, but without its per-field loop. Not a
        checkpoint; pure computation.
        """
        order = cls._wire_order
        values = fields
        if tuple(values) != order:  # missing fields, unknown ones, or another order
            values = {**cls._wire_defaults, **fields}
            for name, factory in cls._wire_factories.items():
                if name not in values:
                    values[name] = factory()
            if values.keys() != set(order):
                missing = sorted(set(order) - values.keys())
                unknown = sorted(values.keys() - set(order))
                raise TypeError(f"{cls.__name__}.build: missing {missing}, unknown {unknown}")
            values = {name: values[name] for name in order}  # the JSON follows this order
        model = cls.__new__(cls)
        _setattr(model, "__dict__", values)
        _setattr(model, "__pydantic_fields_set__", set(fields))
        _setattr(model, "__pydantic_extra__", {} if cls._wire_extra else None)
        _setattr(model, "__pydantic_private__", None)
        return model


def dump_json(model: BaseModel) -> str:
    """``model`` as one line of compact JSON text, camelCase (the SSE ``data:``, a body).

    Pure computation, not a checkpoint.
    """
    return model.__pydantic_serializer__.to_json(model, by_alias=True).decode()


def dump_json_bytes(model: BaseModel) -> bytes:
    """:func:`dump_json` as UTF-8 bytes, without the decode."""
    return model.__pydantic_serializer__.to_json(model, by_alias=True)


def dump_wire(model: BaseModel) -> dict[str, Any]:
    """``model`` as the JSON-compatible dict the wire carries (camelCase keys)."""
    wire: dict[str, Any] = model.__pydantic_serializer__.to_python(
        model, by_alias=True, mode="json"
    )
    return wire
