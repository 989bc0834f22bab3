"""Projector hook: `corrections.v1` into the corrections read model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from contracts import topics
from contracts.codec import decode, loads
from contracts.corrections import LoanCorrected
from services.gateway.patterns import storable
from services.gateway.projector.hooks import ProjectionHook
from services.gateway.tables import SCHEMA

if TYPE_CHECKING:
    from services.gateway.projector.plan import Record

COLUMNS = (
    "correction_id",
    "loan_id",
    "run_id",
    "sales_team_id",
    "source_file",
    "row",
    "seller_loan_number",
    "field",
    "value",
    "previous",
    "reason",
    "corrected_by",
    "corrected_at",
    "partition",
    "offset",
)


def event_type_of(record: Record) -> str | None:
    """A record's event type: its `event-type` header, else its value's `event_type`."""
    for name, value in record.headers:
        if name == "event-type":
            return value.decode()
    body = loads(record.value or b"{}")
    if not isinstance(body, dict):
        raise ValueError("a corrections record must be a JSON object")
    return body.get("event_type")


def plan_corrections(record: Record) -> list[tuple[Any, ...]]:
    """A correction's row; raises (so the record is dead-lettered) when it is not one."""
    if record.topic != topics.CORRECTIONS.name or event_type_of(record) != "loan.corrected":
        return []
    event = decode(record.value or b"", LoanCorrected)
    return [
        (
            event.correction_id,
            event.loan_id,
            event.run_id,
            event.sales_team_id,
            event.source_file,
            event.row,
            event.seller_loan_number,
            event.field,
            storable(event.value),
            storable(event.previous),
            storable(event.reason),
            event.corrected_by,
            event.occurred_at,
            record.partition,
            record.offset,
        )
    ]


async def write_corrections(conn: asyncpg.Connection, rows: list[Any]) -> None:
    """Insert corrections not seen before (a redelivery keeps the first copy)."""
    names = ", ".join(f'"{name}"' for name in COLUMNS)
    values = ", ".join(f"${index}" for index in range(1, len(COLUMNS) + 1))
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.loan_corrections ({names}) VALUES ({values}) "
        "ON CONFLICT (correction_id) DO NOTHING",
        rows,
    )


CORRECTIONS_HOOK = ProjectionHook("loan_corrections", plan_corrections, write_corrections)
