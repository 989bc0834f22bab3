"""Queries behind the data-quality endpoints (the caller has checked scope)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import and_, any_, func, literal, not_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.loans import LOAN_FIELDS, NUMERIC_FIELDS
from contracts.quality import QualitySums
from services.gateway.tables import loan_facts, run_totals, runs

f = loan_facts.c


async def field_counts(session: AsyncSession, run_id: UUID) -> dict[str, int]:
    """Loans, and per loan field the loans where it is present (and valid, for numbers)."""
    columns = [func.count().label("loans")]
    for name in LOAN_FIELDS:
        column = f[name]
        columns.append(func.count(column).label(f"{name}:present"))
        if name in NUMERIC_FIELDS:
            valid = and_(column.isnot(None), not_(literal(name) == any_(f.invalid)))
            columns.append(func.count().filter(valid).label(f"{name}:valid"))
    row = (await session.execute(select(*columns).where(f.run_id == run_id))).one()
    return {key: int(value) for key, value in row._mapping.items()}


async def score_bands(session: AsyncSession, run_id: UUID, edges: tuple[Decimal, ...]) -> list[int]:
    """Loans per score band [edges[i], edges[i+1]); the last band includes its top."""
    columns = []
    for low, high in zip(edges, edges[1:], strict=False):
        top = f.dq_score <= high if high == edges[-1] else f.dq_score < high
        columns.append(func.count().filter(and_(f.dq_score >= low, top)))
    row = (await session.execute(select(*columns).where(f.run_id == run_id))).one()
    return [int(value) for value in row]


async def failures(
    session: AsyncSession,
    run_id: UUID,
    max_score: Decimal,
    *,
    skip: int,
    limit: int,
    after: tuple[Decimal, int] | None,
) -> list[Any]:
    """Loans with dq_score ≤ max_score, weakest first, then in tape order (keyset)."""
    query = select(loan_facts).where(f.run_id == run_id, f.dq_score <= max_score)
    if after is not None:
        query = query.where(tuple_(f.dq_score, f.seq) > tuple_(*after))
    query = query.order_by(f.dq_score, f.seq).offset(skip).limit(limit)
    return list(await session.execute(query))


async def runs_between(
    session: AsyncSession,
    team_scope: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[Any]:
    """Runs created in [start, end), oldest first, with their quality sums."""
    t = run_totals.c
    query = select(
        runs.c.run_id,
        runs.c.created_at,
        runs.c.status,
        t.loans,
        t.present_fields,
        t.validity_420,
        t.unique_loans,
        t.rules_passed,
        t.dq_score,
    ).join(run_totals, t.run_id == runs.c.run_id)
    if team_scope is not None:
        query = query.where(runs.c.sales_team_id == team_scope)
    if start is not None:
        query = query.where(runs.c.created_at >= start)
    if end is not None:
        query = query.where(runs.c.created_at < end)
    query = query.order_by(runs.c.created_at, runs.c.run_id).limit(limit)
    return list(await session.execute(query))


def sums_of_row(row: Any) -> QualitySums:
    """Quality sums from a `runs_between` row."""
    return QualitySums(
        int(row.loans),
        int(row.present_fields),
        int(row.validity_420),
        int(row.unique_loans),
        int(row.rules_passed),
        row.dq_score,
    )
