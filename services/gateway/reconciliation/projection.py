"""Projector hooks: reconciliation reviews from `corrections.v1`, reprocess edits from `runs.v1`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from contracts import topics
from contracts.codec import decode
from contracts.corrections import FindingReviewed
from contracts.runs import RunReprocessRequested
from services.gateway.corrections.projection import event_type_of
from services.gateway.patterns import storable
from services.gateway.projector.hooks import ProjectionHook
from services.gateway.tables import SCHEMA

if TYPE_CHECKING:
    from services.gateway.projector.plan import Record


def plan_reviews(record: Record) -> list[tuple[Any, ...]]:
    """A review's row (the latest review of a finding wins)."""
    if record.topic != topics.CORRECTIONS.name:
        return []
    if event_type_of(record) != "reconciliation.finding_reviewed":
        return []
    event = decode(record.value or b"", FindingReviewed)
    return [
        (
            event.finding_id,
            event.run_id,
            event.action,
            storable(event.notes),
            event.reviewed_by,
            event.occurred_at,
            record.partition,
            record.offset,
        )
    ]


async def write_reviews(conn: asyncpg.Connection, rows: list[Any]) -> None:
    """Upsert reviews in log order: a later review replaces an earlier one."""
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.reconciliation_reviews "
        '(finding_id, run_id, action, notes, reviewed_by, reviewed_at, partition, "offset") '
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (finding_id) DO UPDATE SET "
        "action = EXCLUDED.action, notes = EXCLUDED.notes, reviewed_by = EXCLUDED.reviewed_by, "
        'reviewed_at = EXCLUDED.reviewed_at, partition = EXCLUDED.partition, "offset" = '
        'EXCLUDED."offset" WHERE (reconciliation_reviews.reviewed_at, '
        'reconciliation_reviews."offset") <= (EXCLUDED.reviewed_at, EXCLUDED."offset")',
        rows,
    )


def plan_edits(record: Record) -> list[tuple[Any, ...]]:
    """A reprocess's edits (corrections applied, rows kept), kept for its reconciliation."""
    if record.topic != topics.RUNS.name or b'"edits"' not in (record.value or b""):
        return []
    if event_type_of(record) != "run.reprocess_requested":
        return []
    event = decode(record.value or b"", RunReprocessRequested)
    if event.edits is None:
        return []
    return [(event.run_id, event.edits.model_dump_json())]


async def write_edits(conn: asyncpg.Connection, rows: list[Any]) -> None:
    """One row per reprocess (a redelivery writes the same edits again)."""
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.run_edits (run_id, edits) VALUES ($1, $2::jsonb) "
        "ON CONFLICT (run_id) DO NOTHING",
        rows,
    )


def edits_json(value: Any) -> bytes:
    """The stored edits as JSON bytes (asyncpg hands JSONB back as text)."""
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


REVIEWS_HOOK = ProjectionHook("reconciliation_reviews", plan_reviews, write_reviews)
EDITS_HOOK = ProjectionHook("run_edits", plan_edits, write_edits)
