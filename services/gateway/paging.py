"""Keyset paging: the `Page` shape of every list, and opaque cursors (the sort key of a page's last
row, URL-safe, checked on the way in)."""

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, Field

Key = Sequence[object]
# A cursor's integers are column values: each is declared as the range of its column's type, so a
# crafted cursor answers 422 instead of overflowing the database's parameter.
SMALLINT = range(-(2**15), 2**15)
INTEGER = range(-(2**31), 2**31)
BIGINT = range(-(2**63), 2**63)
CursorType = type | range


class InvalidCursor(ValueError):
    """A cursor that was not produced by `encode_cursor` for this kind of list."""


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def encode_cursor(kind: str, key: Key) -> str:
    """The cursor after the row whose sort key is `key`."""
    payload = json.dumps([kind, [_plain(value) for value in key]], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, types: Sequence[CursorType]) -> tuple[object, ...]:
    """The sort key inside a cursor, each value converted to its declared type."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found_kind, values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if found_kind != kind or len(values) != len(types):
            raise InvalidCursor("cursor does not belong to this list")
        return tuple(_typed(value, kind_) for value, kind_ in zip(values, types, strict=True))
    except (ValueError, TypeError, binascii.Error) as error:
        raise InvalidCursor("invalid cursor") from error


def _typed(value: object, target: CursorType) -> object:
    if value is None:
        return None
    if target is datetime:
        return datetime.fromisoformat(str(value))
    if target is UUID:
        return UUID(str(value))
    if isinstance(target, range) and isinstance(value, int) and not isinstance(value, bool):
        if value not in target:
            raise InvalidCursor("cursor value out of range")
        return value
    if target is str and isinstance(value, str):
        return value
    raise InvalidCursor("cursor value of the wrong type")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: its items and the cursor of the next page (keyset paging)."""

    items: list[T]
    skip: int = Field(description="Rows skipped before this page.")
    limit: int = Field(description="Largest number of items a page holds.")
    next_cursor: str | None = Field(
        None, description="Pass as `after` for the next page; null on the last page."
    )
