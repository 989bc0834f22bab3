"""Projector hook: each loan batch's partition and offset per stage, from its key alone (and
those of each scored batch's auto decisions on reviews.v1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from contracts import topics
from services.gateway.projector.hooks import ProjectionHook
from services.gateway.tables import SCHEMA

if TYPE_CHECKING:
    from services.gateway.projector.plan import Record

STAGE_OF_TOPIC = {
    topics.LOANS_INGESTED.name: "ingested",
    topics.LOANS_EVALUATED.name: "evaluated",
    topics.LOANS_PRICED.name: "priced",
    topics.LOANS_DISPOSITIONED.name: "dispositioned",
    topics.LOANS_SCORED.name: "scored",
}


# The review job's auto decisions travel per scored batch, keyed like the loan batches.
AUTO_DECISIONS = b'"review.auto_decisions_recorded"'


def plan_positions(record: Record) -> list[tuple[UUID, str, int, int, int]]:
    """(run_id, stage, batch_seq, partition, offset) of a loan batch or of a batch's auto
    decisions (stage `decided`); nothing for other records."""
    stage = STAGE_OF_TOPIC.get(record.topic)
    if record.topic == topics.REVIEWS.name and AUTO_DECISIONS in (record.value or b""):
        stage = "decided"
    if stage is None:
        return []
    run_text, _, seq_text = (record.key or b"").decode().rpartition(":")
    if not run_text:
        return []  # a batch without its key: the core projection reads (or rejects) it
    return [(UUID(run_text), stage, int(seq_text), record.partition, record.offset)]


async def write_positions(conn: asyncpg.Connection, rows: list[Any]) -> None:
    """The first position of every batch wins: a redelivered copy does not move it."""
    await conn.execute(
        f'INSERT INTO {SCHEMA}.batch_positions (run_id, stage, batch_seq, partition, "offset") '
        "SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::bigint[]) "
        "ON CONFLICT DO NOTHING",
        *(list(column) for column in zip(*_first(rows), strict=True)),
    )


def _first(rows: list[Any]) -> list[Any]:
    seen: dict[tuple[UUID, str, int], Any] = {}
    for row in rows:
        seen.setdefault(row[:3], row)
    return list(seen.values())


POSITIONS_HOOK = ProjectionHook("batch_positions", plan_positions, write_positions)
