"""Keyset cursors round-trip and refuse anything they did not make."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from services.gateway.paging import (
    BIGINT,
    INTEGER,
    SMALLINT,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
)


def test_a_cursor_gives_back_its_sort_key() -> None:
    key = (datetime(2026, 11, 23, 9, 30, tzinfo=UTC), uuid4())
    cursor = encode_cursor("runs", key)
    assert decode_cursor("runs", cursor, (datetime, type(key[1]))) == key


def test_a_cursor_of_another_list_is_refused() -> None:
    cursor = encode_cursor("loans", (5,))
    with pytest.raises(InvalidCursor):
        decode_cursor("runs", cursor, (INTEGER,))


@pytest.mark.parametrize("cursor", ["", "!!!", "bm9wZQ", encode_cursor("loans", ("x",))])
def test_garbage_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor("loans", cursor, (INTEGER,))


@pytest.mark.parametrize(
    ("values", "types"),
    [
        ((2**31,), (INTEGER,)),
        ((-(2**31) - 1,), (INTEGER,)),
        ((10**30,), (BIGINT,)),
        ((1, 2**15), (INTEGER, SMALLINT)),
        ((True,), (INTEGER,)),
    ],
)
def test_a_cursor_integer_outside_its_columns_type_is_refused(
    values: tuple[object, ...], types: tuple[range, ...]
) -> None:
    # A crafted cursor must answer 400, not overflow the database's parameter (a 500).
    with pytest.raises(InvalidCursor):
        decode_cursor("loans", encode_cursor("loans", values), types)


def test_cursor_integers_at_the_ends_of_their_types_are_taken() -> None:
    key = (2**63 - 1, 2**31 - 1, -(2**15))
    assert decode_cursor("x", encode_cursor("x", key), (BIGINT, INTEGER, SMALLINT)) == key
