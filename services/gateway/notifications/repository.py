"""Queries of notifications: a user's list with its read state, and what the jobs still owe."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, and_, any_, case, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.tables import (
    notification_read_marks,
    notification_reads,
    notifications,
    review_decisions,
    runs,
    users,
)

n = notifications.c
r = notification_reads.c
m = notification_read_marks.c
OVERRIDE_KINDS = ("override_approved", "override_rejected")
FINISHED = ("completed", "failed", "decided")


def _mine(user_id: UUID, team_scope: str | None) -> Select[Any]:
    read = or_(
        r.user_id.is_not(None),
        and_(m.read_through.is_not(None), n.occurred_at <= m.read_through),
    ).label("read")
    query = (
        select(notifications, read)
        .outerjoin(
            notification_reads, (r.notification_id == n.notification_id) & (r.user_id == user_id)
        )
        .outerjoin(notification_read_marks, m.user_id == user_id)
        .where(literal(user_id) == any_(n.recipients))
    )
    if team_scope is not None:
        query = query.where(n.team_id == team_scope)
    return query


async def list_for(
    session: AsyncSession,
    user_id: UUID,
    team_scope: str | None,
    unread_only: bool,
    skip: int,
    limit: int,
) -> tuple[list[Any], int, int]:
    """One page of a user's notifications (newest first), how many match, how many are unread."""
    mine = _mine(user_id, team_scope).subquery()
    counts = select(func.count(), func.count().filter(mine.c.read.is_(False)))
    total, unread = (await session.execute(counts.select_from(mine))).one()
    query = select(mine)
    if unread_only:
        query = query.where(mine.c.read.is_(False))
    page = query.order_by(mine.c.occurred_at.desc(), mine.c.notification_id).offset(skip)
    rows = list(await session.execute(page.limit(limit)))
    return rows, int(unread if unread_only else total), int(unread)


async def newest_for(session: AsyncSession, user_id: UUID, team_scope: str | None) -> Any:
    """When the user's newest notification was raised (None when they have none)."""
    mine = _mine(user_id, team_scope).subquery()
    return (await session.execute(select(func.max(mine.c.occurred_at)))).scalar_one()


async def get_for(
    session: AsyncSession, user_id: UUID, team_scope: str | None, notification_id: UUID
) -> Any | None:
    """One of the user's notifications with its read state, or None."""
    query = _mine(user_id, team_scope).where(n.notification_id == notification_id)
    return (await session.execute(query)).first()


async def read_outcomes(session: AsyncSession, event_ids: list[UUID]) -> dict[UUID, Any]:
    """Which read events the projector has folded."""
    one = select(r.event_id).where(r.event_id.in_(event_ids))
    every = select(m.event_id).where(m.event_id.in_(event_ids))
    return {row[0]: True for row in await session.execute(one.union(every))}


def _not_notified(kinds: tuple[str, ...], subject: Any) -> Any:
    return ~exists().where(n.kind.in_(kinds), n.subject_id == subject)


def override_outcomes_query(since: datetime, limit: int) -> Select[Any]:
    """Overrides approved or rejected since `since` whose analyst was not told yet, oldest first."""
    d = review_decisions.c
    return (
        select(
            d.decision_id,
            d.case_id,
            d.run_id,
            d.status,
            d.decided_by,
            d.override_notes,
            runs.c.sales_team_id,
        )
        .outerjoin(runs, runs.c.run_id == d.run_id)
        .where(
            # Bare, not `IS TRUE`: the partial index `review_decisions_overrides` matches only this.
            d.is_override,
            d.override_at >= since,
            d.status.in_(("final", "override_rejected")),
            _not_notified(OVERRIDE_KINDS, d.decision_id),
        )
        .order_by(d.override_at, d.decision_id)
        .limit(limit)
    )


async def override_outcomes(session: AsyncSession, since: datetime, limit: int) -> list[Any]:
    """Overrides approved or rejected since `since` whose analyst was not told yet."""
    return list(await session.execute(override_outcomes_query(since, limit)))


def _finished_at() -> Any:
    t = runs.c
    return func.coalesce(t.completed_at, t.outputs_written_at, t.tape_ingested_at, t.started_at)


def _run_kind() -> Any:
    """The notification kind a finished run's status calls for (as `domain` chooses it)."""
    return case((runs.c.status == "failed", "run_failed"), else_="run_completed")


async def finished_runs(session: AsyncSession, since: datetime, limit: int) -> list[Any]:
    """Runs completed or failed since `since` that nobody was told of yet."""
    t = runs.c
    query = (
        select(t.run_id, t.status, t.error, t.sales_team_id, t.requested_by)
        .where(
            t.status.in_(FINISHED),
            _finished_at() >= since,
            # Per outcome: a run that failed, was retried and then completed is told of again.
            ~exists().where(n.kind == _run_kind(), n.subject_id == t.run_id),
        )
        .order_by(_finished_at(), t.run_id)
        .limit(limit)
    )
    return list(await session.execute(query))


async def run_audience(
    session: AsyncSession, usernames: set[str], teams: set[str]
) -> tuple[dict[str, UUID], dict[str, list[UUID]]]:
    """Active users by username, and the active sales users of each team."""
    u = users.c
    by_name = {
        row.username: row.id
        for row in await session.execute(
            select(u.id, u.username).where(u.username.in_(usernames), u.is_active.is_(True))
        )
    }
    members: dict[str, list[UUID]] = {}
    query = select(u.id, u.team_id).where(
        u.team_id.in_(teams), u.role == "sales_team", u.is_active.is_(True)
    )
    for row in await session.execute(query):
        members.setdefault(row.team_id, []).append(row.id)
    return by_name, members
