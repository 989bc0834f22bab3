"""Text patterns request shapes share."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

# Text the database can store: no NUL character (PostgreSQL refuses it in `text`).
NO_NUL = r"^[^\x00]*$"
# A team id: the slug of its name.
TEAM_ID = r"^[a-z0-9][a-z0-9-]*$"


def storable(text: str | None) -> str | None:
    """Text PostgreSQL can store in `text` and `jsonb`: each NUL becomes U+FFFD."""
    return None if text is None else text.replace("\x00", "\ufffd")


# A decimal written in ASCII digits (the OpenAPI's pattern and the validator's are one).
DECIMAL_TEXT = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DECIMAL_TEXT = re.compile(DECIMAL_TEXT)
# An ISO 8601 date-time as the OpenAPI's `date-time` format means it (never a number of seconds).
_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}.*")


def _decimal_text(value: object) -> object:
    if isinstance(value, bool) or (isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value)):
        raise ValueError("must be a number written in ASCII digits, such as 12.5")
    return value


def _iso_datetime(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATETIME.fullmatch(value)):
        return value
    raise ValueError("must be a date-time written YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]")


def decimal_between(low: int, high: int) -> Any:
    """A Decimal in [low, high], given as a number written in ASCII digits."""
    return Annotated[
        Decimal,
        BeforeValidator(_decimal_text),
        Field(ge=low, le=high),
        # A query string carries the number as text; the schema states the bounds that matter.
        WithJsonSchema({"type": "number", "minimum": low, "maximum": high}),
    ]


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]
"""A date-time given as ISO 8601 text: a number is refused, not read as seconds since 1970."""
