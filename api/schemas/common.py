"""Shared request/response building blocks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict

from api.problems import FieldError, ValidationFailed

T = TypeVar("T")


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(Output, Generic[T]):
    items: list[T]
    next_cursor: str | None


Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1–200).")]
Cursor = Annotated[str | None, Query(max_length=512, description="Opaque cursor from next_cursor.")]


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        detail="The cursor is not one this service issued.",
        errors=[FieldError(pointer="/cursor", detail="Invalid cursor.", location="query")],
    )


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    """The keyset position a cursor names, or a 422 naming the parameter."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        key = None
    if not isinstance(key, list) or len(key) != arity:
        raise _invalid_cursor()
    return key


def decode_keyset(cursor: str | None, *parts: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The keyset position a cursor names, each part converted (``datetime.fromisoformat``,
    ``uuid.UUID``…), or a 422 naming the parameter when it is not one this service issued."""
    position = decode_cursor(cursor, len(parts))
    if position is None:
        return None
    try:
        return tuple(convert(value) for convert, value in zip(parts, position, strict=True))
    except (TypeError, ValueError, AttributeError):  # uuid.UUID(3) raises AttributeError
        raise _invalid_cursor() from None
