"""Queries behind lineage and stage tracking (the caller has checked scope)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.lineage.tables import batch_positions
from services.gateway.tables import batch_stats, loan_exceptions, run_batches


async def loans_per_batch(session: AsyncSession, run_id: UUID) -> dict[str, dict[int, int]]:
    """Loans per batch number, per loan-topic stage."""
    c = run_batches.c
    query = select(c.stage, c.batch_seq, c.loan_count).where(c.run_id == run_id)
    found: dict[str, dict[int, int]] = {}
    for stage, batch_seq, count in await session.execute(query):
        found.setdefault(stage, {})[batch_seq] = count
    return found


async def projected_loans(session: AsyncSession, run_id: UUID) -> int:
    """Loans of the run in the loan read model."""
    query = select(func.coalesce(func.sum(batch_stats.c.loans), 0)).where(
        batch_stats.c.run_id == run_id
    )
    return int(await session.scalar(query) or 0)


async def positions(session: AsyncSession, run_id: UUID, batch_seqs: list[int]) -> list[Any]:
    """(stage, batch_seq, partition, offset) of those batches on every loan topic."""
    c = batch_positions.c
    query = select(c.stage, c.batch_seq, c.partition, c.offset).where(
        c.run_id == run_id, c.batch_seq.in_(batch_seqs)
    )
    return list(await session.execute(query))


async def batch_times(session: AsyncSession, run_id: UUID, batch_seq: int) -> dict[str, Any]:
    """When each stage's copy of a batch was recorded (its Kafka timestamp)."""
    c = run_batches.c
    query = select(c.stage, c.recorded_at).where(c.run_id == run_id, c.batch_seq == batch_seq)
    return {row.stage: row.recorded_at for row in await session.execute(query)}


async def exception_types(session: AsyncSession, run_id: UUID, seq: int) -> list[str]:
    """A loan's exception types in the order they were raised."""
    c = loan_exceptions.c
    query = select(c.exception_type).where(c.run_id == run_id, c.seq == seq).order_by(c.ordinal)
    return list((await session.scalars(query)).all())
