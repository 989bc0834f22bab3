"""Notifications for their recipients: the list, and marking read (published on notifications.v1
and answered once folded); team webhooks' configuration."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.notifications import NotificationsRead
from services.gateway import acting
from services.gateway.deps import Publisher
from services.gateway.errors import NotFound
from services.gateway.identity.principal import Principal
from services.gateway.notifications import repository as repo
from services.gateway.notifications.publishing import publish_notifications
from services.gateway.notifications.schemas import NotificationPage, NotificationView, WebhookView
from services.gateway.tables import team_webhooks, teams


def view(row: Any) -> NotificationView:
    """A notification row as its recipient sees it."""
    return NotificationView.model_validate(row, from_attributes=True)


async def page(
    session: AsyncSession, user: Principal, unread_only: bool, skip: int, limit: int
) -> NotificationPage:
    """One page of the user's notifications."""
    rows, total, unread = await repo.list_for(
        session, user.user_id, user.team_scope, unread_only, skip, limit
    )
    return NotificationPage(
        items=[view(row) for row in rows], total=total, unread=unread, skip=skip, limit=limit
    )


async def _read(
    session: AsyncSession, publisher: Publisher, event: NotificationsRead, wait_seconds: float
) -> bool:
    await publish_notifications(publisher, [event])
    folded = await acting.wait_folded(session, [event.event_id], wait_seconds, repo.read_outcomes)
    return event.event_id in folded


async def mark_read(
    session: AsyncSession,
    publisher: Publisher,
    user: Principal,
    notification_id: UUID,
    wait_seconds: float,
    now: datetime,
) -> tuple[NotificationView, bool]:
    """Mark one of the user's notifications read; the view and whether it is folded yet."""
    row = await repo.get_for(session, user.user_id, user.team_scope, notification_id)
    if row is None:
        raise NotFound("Notification not found")
    if row.read:
        return view(row), True
    event = NotificationsRead(
        event_id=uuid4(), user_id=user.user_id, notification_ids=(notification_id,), occurred_at=now
    )
    folded = await _read(session, publisher, event, wait_seconds)
    return view(row).model_copy(update={"read": True}), folded


async def mark_all_read(
    session: AsyncSession, publisher: Publisher, user: Principal, wait_seconds: float, now: datetime
) -> tuple[datetime | None, bool]:
    """Mark every notification the user has now read (all raised up to their newest one);
    the time read through (None: they have none) and whether it is folded yet."""
    newest = await repo.newest_for(session, user.user_id, user.team_scope)
    await session.commit()
    if newest is None:
        return None, True
    event = NotificationsRead(
        event_id=uuid4(), user_id=user.user_id, read_through=newest, occurred_at=now
    )
    return newest, await _read(session, publisher, event, wait_seconds)


async def get_webhook(session: AsyncSession, team_id: str) -> WebhookView:
    """A team's webhook, or 404."""
    query = select(team_webhooks).where(team_webhooks.c.team_id == team_id)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("This team has no webhook")
    return WebhookView.model_validate(row, from_attributes=True)


async def set_webhook(
    session: AsyncSession, team_id: str, url: str, secret: str, now: datetime
) -> WebhookView:
    """Create or replace a team's webhook (its URL and secret)."""
    team = await session.execute(select(teams.c.id).where(teams.c.id == team_id))
    if team.first() is None:
        raise NotFound("Team not found")
    statement = insert(team_webhooks).values(
        team_id=team_id, url=url, secret=secret, created_at=now, updated_at=now
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[team_webhooks.c.team_id],
            set_={"url": url, "secret": secret, "updated_at": now},
        )
    )
    await session.commit()
    return await get_webhook(session, team_id)


async def remove_webhook(session: AsyncSession, team_id: str) -> None:
    """Remove a team's webhook (its delivery log stays), or 404."""
    statement = delete(team_webhooks).where(team_webhooks.c.team_id == team_id)
    removed = (await session.execute(statement.returning(team_webhooks.c.team_id))).first()
    await session.commit()
    if removed is None:
        raise NotFound("This team has no webhook")
