"""Shared request/response building blocks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, TypedDict, TypeVar

from fastapi import Query, Response
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError, to_json

from api.problems import FieldError, ValidationFailed

T = TypeVar("T")

#: the validation context of input known to hold no NUL character (:func:`body_holds_no_nul`):
#: :class:`Input` then skips the search
NUL_FREE: dict[str, Any] = {"nul_free": True}


def body_holds_no_nul(body: bytes) -> bool:
    """Whether a JSON body certainly holds no U+0000: JSON carries it escaped only (a raw
    control character is not JSON), so a body without the escape holds none. An escaped
    backslash before ``u0000`` is a false alarm, which only costs the search."""
    return b"\\u0000" not in body


def holds_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds U+0000 anywhere (keys included).

    PostgreSQL text cannot store it: refused at the schema layer, it is a 422 naming the
    field instead of a driver error deep in a repository."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(holds_nul(v) for v in value)
    return False  # numbers, dates, ids, nested models (which checked their own fields)


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused, and so is the NUL character in any
    text, at any depth (one validator for every body, rather than a rule per field)."""

    model_config = ConfigDict(extra="forbid")

    #: fields whose elements are each validated as an :class:`Input` of their own later (a
    #: batch's items): their NUL characters are found there, element by element
    nul_checked_per_element: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any, info: ValidationInfo) -> Any:
        if info.context is not None and info.context.get("nul_free"):
            return value
        if info.field_name not in cls.nul_checked_per_element and holds_nul(value):
            raise PydanticCustomError("nul_character", "Text may not contain the NUL character.")
        return value


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(Output, Generic[T]):
    items: list[T]
    next_cursor: str | None


class PlainPage(TypedDict, Generic[T]):
    """A :class:`Page` of plain values, answered with :func:`plain_json`."""

    items: list[T]
    next_cursor: str | None


def plain_json(content: Any) -> Response:
    """A JSON answer of plain values (dicts holding a response model's fields in its order,
    lists, text, numbers, ids, dates) serialised by pydantic's serialiser, as FastAPI
    serialises a response model: the same bytes, without a model built per item. For the
    hot lists whose rows come typed from their columns (a box's fifty summaries: ~0.8 ms
    from rows to JSON through the models, ~0.2 ms this way). The route still declares its
    model (``response_model``) for the contract, and a test reads the answer back through
    it."""
    return Response(to_json(content), media_type="application/json")


Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1–200).")]
Cursor = Annotated[str | None, Query(max_length=512, description="Opaque cursor from next_cursor.")]


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        detail="The cursor is not one this service issued.",
        errors=[FieldError(pointer="/cursor", detail="Invalid cursor.", location="query")],
    )


INT64_MAX = 2**63 - 1


def as_int64(value: Any) -> int:
    """A cursor part that must be an integer PostgreSQL can bind (``bigint``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not -INT64_MAX - 1 <= value <= INT64_MAX
    ):
        raise ValueError("not a 64-bit integer")
    return value


def as_int32(value: Any) -> int:
    """A cursor part bound as an ``integer`` column (a rank, a population)."""
    if not -(2**31) <= as_int64(value) < 2**31:
        raise ValueError("not a 32-bit integer")
    return int(value)


def as_text(value: Any) -> str:
    """A cursor part that must be a string PostgreSQL can store (no NUL character)."""
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError("not a text value")
    return value


def as_instant(value: Any) -> datetime:
    """A cursor part that must be an ISO 8601 instant PostgreSQL can bind."""
    moment = datetime.fromisoformat(as_text(value))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    """The keyset position a cursor names, or a 422 naming the parameter.

    Only what this service issues gets through: a JSON list of ``arity`` strings (without NUL)
    and 64-bit integers. Anything else — a forged cursor of floats, objects, integers beyond
    ``bigint`` — is refused here rather than failing later in the database driver."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, RecursionError):
        key = None
    if not isinstance(key, list) or len(key) != arity:
        raise _invalid_cursor()
    for part in key:
        try:
            as_int64(part) if isinstance(part, int) else as_text(part)
        except ValueError:
            raise _invalid_cursor() from None
    return key


def decode_keyset(cursor: str | None, *parts: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The keyset position a cursor names, each part converted (``as_int64``, ``as_text``,
    ``as_instant``, ``uuid.UUID``…), or a 422 naming the parameter when it is not one this service
    issued."""
    position = decode_cursor(cursor, len(parts))
    if position is None:
        return None
    try:
        return tuple(convert(value) for convert, value in zip(parts, position, strict=True))
    except (TypeError, ValueError, AttributeError, OverflowError):  # uuid.UUID(3): AttributeError
        raise _invalid_cursor() from None
