"""Queries of the SLA jobs: open cases near or past their deadline, and who holds how many."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, not_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.review.domain import ACTIVE, OPEN_STATUSES
from services.gateway.tables import review_cases, runs, users

c = review_cases.c


async def cases_due(
    session: AsyncSession,
    until: datetime,
    limit: int,
    *,
    pending_only: bool = False,
    after: tuple[datetime, UUID] | None = None,
) -> list[Any]:
    """Open cases with a deadline at or before `until` and SLA marks still to publish (or, with
    `pending_only`, every pending one), nearest deadline first; after `after` =
    (sla_deadline, case_id) when given (the last case of the previous page)."""
    # Breached and escalated is the last mark: a case first seen past its deadline is never
    # warned, and must not be read again on every tick until someone decides it.
    done = and_(c.sla_breached_at.is_not(None), c.escalated_at.is_not(None))
    query = (
        select(
            c.case_id,
            c.loan_id,
            c.run_id,
            c.status,
            c.sla_deadline,
            c.releases,
            c.assignee,
            c.seller_loan_number,
            c.sla_warned_at,
            c.sla_breached_at,
            c.escalated_at,
            runs.c.sales_team_id,
        )
        .outerjoin(runs, runs.c.run_id == c.run_id)
        .where(c.sla_deadline <= until)
        .order_by(c.sla_deadline, c.case_id)
        .limit(limit)
    )
    if pending_only:
        query = query.where(c.status == "pending")
    else:
        query = query.where(c.status.in_(sorted(OPEN_STATUSES)), not_(done))
    if after is not None:
        query = query.where(tuple_(c.sla_deadline, c.case_id) > tuple_(*after))
    return list(await session.execute(query))


async def active_counts(session: AsyncSession, analysts: list[UUID]) -> dict[UUID, int]:
    """How many active cases each analyst holds (0 for those holding none)."""
    query = (
        select(c.assignee, func.count())
        .where(c.assignee.in_(analysts), c.status.in_(sorted(ACTIVE)))
        .group_by(c.assignee)
    )
    counts = {row[0]: int(row[1]) for row in await session.execute(query)}
    return {user: counts.get(user, 0) for user in analysts}


async def users_with_roles(session: AsyncSession, roles: tuple[str, ...]) -> list[UUID]:
    """Active users holding one of the roles, by id."""
    query = (
        select(users.c.id)
        .where(users.c.role.in_(roles), users.c.is_active.is_(True))
        .order_by(users.c.id)
    )
    return [row[0] for row in await session.execute(query)]


async def measured_cases(
    session: AsyncSession, since: datetime, until: datetime, team_scope: str | None
) -> list[Any]:
    """Cases opened in [since, until) in scope, with what the SLA metrics need."""
    query = (
        select(
            c.opened_priority,
            c.opened_at,
            c.sla_deadline,
            c.decided_at,
            c.sla_warned_at,
            c.escalated_at,
        )
        .outerjoin(runs, runs.c.run_id == c.run_id)
        .where(c.opened_at >= since, c.opened_at < until)
    )
    if team_scope is not None:
        query = query.where(runs.c.sales_team_id == team_scope)
    return list(await session.execute(query))
