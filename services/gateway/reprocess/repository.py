"""Queries behind a reprocess: the parent's rows, the run's ancestry, both sides of a diff."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.tables import SCHEMA, loan_facts, runs

MAX_ANCESTORS = 100


async def rows_of_loans(session: AsyncSession, run_id: UUID, loan_ids: Sequence[UUID]) -> list[Any]:
    """(loan_id, source_file, row) of those loans that belong to the run, in tape order."""
    c = loan_facts.c
    query = (
        select(c.loan_id, c.source_file, c.row)
        .where(c.run_id == run_id, c.loan_id.in_(list(loan_ids)))
        .order_by(c.seq)
    )
    return list(await session.execute(query))


async def ancestry(session: AsyncSession, run_id: UUID) -> list[UUID]:
    """The run and its ancestors (parent, grandparent, ...), newest first."""
    chain = [run_id]
    while len(chain) < MAX_ANCESTORS:
        parent = await session.scalar(
            select(runs.c.parent_run_id).where(runs.c.run_id == chain[-1])
        )
        if parent is None or parent in chain:
            break
        chain.append(parent)
    return chain


_SIDE = f"""
SELECT f.seq, f.loan_id, f.source_file, f.row, f.seller_loan_number, f.disposition,
       f.pricing_spread, f.final_price,
       COALESCE((SELECT array_agg(e.exception_type ORDER BY e.ordinal)
                 FROM {SCHEMA}.loan_exceptions e
                 WHERE e.run_id = f.run_id AND e.seq = f.seq), '{{}}') AS exception_types
FROM {SCHEMA}.loan_facts f WHERE f.run_id = :run_id ORDER BY f.seq
"""


async def outcomes(session: AsyncSession, run_id: UUID) -> list[Any]:
    """Every projected loan of a run with its outcome, in tape order."""
    return list(await session.execute(text(_SIDE), {"run_id": run_id}))
