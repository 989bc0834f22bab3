"""Queries on the corrections read model (the caller has checked scope)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.corrections.tables import loan_corrections

c = loan_corrections.c


async def list_for_loan(session: AsyncSession, loan_id: UUID) -> list[Any]:
    """A loan's corrections in the order they were recorded."""
    query = select(loan_corrections).where(c.loan_id == loan_id)
    return list(await session.execute(query.order_by(c.corrected_at, c.correction_id)))


async def list_for_run(
    session: AsyncSession,
    run_id: UUID,
    *,
    skip: int,
    limit: int,
    after: tuple[object, ...] | None,
) -> list[Any]:
    """A run's corrections in recorded order (keyset on corrected_at, correction_id)."""
    query = select(loan_corrections).where(c.run_id == run_id)
    if after is not None:
        query = query.where(tuple_(c.corrected_at, c.correction_id) > tuple_(*after))
    query = query.order_by(c.corrected_at, c.correction_id).offset(skip).limit(limit)
    return list(await session.execute(query))


async def for_rows(session: AsyncSession, run_ids: Sequence[UUID]) -> list[Any]:
    """Every correction of the loans of these runs, oldest first (a later one wins)."""
    query = select(loan_corrections).where(c.run_id.in_(list(run_ids)))
    return list(await session.execute(query.order_by(c.corrected_at, c.correction_id)))
