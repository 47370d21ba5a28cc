"""Keyset cursors: what the service issues reads back; anything else is a 422, never a 500."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.http.schemas import decode_keyset, encode_cursor
from api.problems import ValidationFailed

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


@given(at=st.datetimes(timezones=st.just(UTC)), key=st.uuids())
def test_an_issued_cursor_reads_back(at: datetime, key: uuid.UUID) -> None:
    cursor = encode_cursor([at.isoformat(), str(key)])
    assert decode_keyset(cursor, datetime.fromisoformat, uuid.UUID) == (at, key)


@given(position=st.lists(json_values, min_size=0, max_size=3))
def test_a_forged_position_is_a_validation_error(position: list[Any]) -> None:
    cursor = encode_cursor(position)
    try:
        decoded = decode_keyset(cursor, datetime.fromisoformat, uuid.UUID)
    except ValidationFailed as error:
        assert error.errors[0].pointer == "/cursor"
    else:
        assert decoded is not None
        assert isinstance(decoded[0], datetime) and isinstance(decoded[1], uuid.UUID)


@given(raw=st.binary(max_size=64))
def test_garbage_is_a_validation_error(raw: bytes) -> None:
    cursor = base64.urlsafe_b64encode(raw).decode() + "!"
    with pytest.raises(ValidationFailed):
        decode_keyset(cursor, uuid.UUID)
