"""Keyset cursors round-trip and refuse anything they did not make."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from services.gateway.paging import InvalidCursor, decode_cursor, encode_cursor


def test_a_cursor_gives_back_its_sort_key() -> None:
    key = (datetime(2026, 11, 23, 9, 30, tzinfo=UTC), uuid4())
    cursor = encode_cursor("runs", key)
    assert decode_cursor("runs", cursor, (datetime, type(key[1]))) == key


def test_a_cursor_of_another_list_is_refused() -> None:
    cursor = encode_cursor("loans", (5,))
    with pytest.raises(InvalidCursor):
        decode_cursor("runs", cursor, (int,))


@pytest.mark.parametrize("cursor", ["", "!!!", "bm9wZQ", encode_cursor("loans", ("x",))])
def test_garbage_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor("loans", cursor, (int,))
