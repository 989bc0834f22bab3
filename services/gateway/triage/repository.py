"""Queries of the exception lifecycle: exceptions with their state, history, fold outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Uuid, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.facts.repository import ExceptionFilters, exceptions_query, with_triage
from services.gateway.tables import exception_actions, loan_exceptions

e = loan_exceptions.c
a = exception_actions.c


async def get_exception(
    session: AsyncSession, exception_id: UUID, team_scope: str | None
) -> Any | None:
    """One exception with its state, or None (also when another team's)."""
    rows = await get_exceptions(session, [exception_id], team_scope)
    return rows[0] if rows else None


async def get_exceptions(
    session: AsyncSession, exception_ids: Sequence[UUID], team_scope: str | None
) -> list[Any]:
    """Exceptions by id with their state (those in scope; one row per id)."""
    query = (
        with_triage(select(loan_exceptions))
        .where(e.exception_id == any_(_ids(exception_ids)))
        .order_by(e.exception_id, e.run_order, e.run_id, e.seq, e.ordinal)
        .ext(distinct_on(e.exception_id))
    )
    if team_scope is not None:
        query = query.where(e.sales_team_id == team_scope)
    return list(await session.execute(query))


async def find_exceptions(
    session: AsyncSession, filters: ExceptionFilters, team_scope: str | None, limit: int
) -> list[Any]:
    """Up to `limit` exceptions matching the filters, in list order."""
    return list(await session.execute(exceptions_query(filters, team_scope, None).limit(limit)))


async def history(session: AsyncSession, exception_id: UUID) -> list[Any]:
    """An exception's actions in log order."""
    query = (
        select(exception_actions)
        .where(a.exception_id == exception_id)
        .order_by(a.offset, a.occurred_at, a.event_id)
    )
    return list(await session.execute(query))


async def outcomes(session: AsyncSession, event_ids: Sequence[UUID]) -> dict[UUID, Any]:
    """The fold's outcome of each event already projected."""
    query = select(a.event_id, a.applied, a.reason, a.to_status).where(
        a.event_id == any_(_ids(event_ids))
    )
    return {row.event_id: row for row in await session.execute(query)}


def _ids(ids: Sequence[UUID]) -> Any:
    return bindparam(None, list(ids), type_=ARRAY(Uuid()))
