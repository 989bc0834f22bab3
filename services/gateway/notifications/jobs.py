"""The notification jobs, run by the review jobs' tick on the same clock: raise the notifications
of override outcomes and of runs completed or failed (the SLA job raises its own), then deliver
team webhooks. Each notification id is deterministic, so a re-run raises nothing twice."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.notifications import NotificationRaised
from services.gateway.deps import Publisher
from services.gateway.notifications import repository as repo
from services.gateway.notifications import webhooks
from services.gateway.notifications.domain import override_notification, run_notification
from services.gateway.notifications.publishing import publish_notifications
from services.gateway.settings import GatewaySettings

PAGE = 500


async def notify_overrides(
    session: AsyncSession, publisher: Publisher, since: datetime, now: datetime
) -> int:
    """Tell each analyst whose override was approved or rejected; return how many."""
    rows = await repo.override_outcomes(session, since, PAGE)
    await session.commit()
    raised = [
        override_notification(
            row.decision_id,
            row.case_id,
            row.run_id,
            row.sales_team_id,
            row.status == "final",
            row.decided_by,
            row.override_notes,
            now,
        )
        for row in rows
    ]
    return await _publish(publisher, raised)


async def notify_runs(
    session: AsyncSession, publisher: Publisher, since: datetime, now: datetime
) -> int:
    """Tell who started each finished run, and its team's sales users; return how many."""
    rows = await repo.finished_runs(session, since, PAGE)
    by_name, members = await repo.run_audience(
        session,
        {row.requested_by for row in rows if row.requested_by},
        {row.sales_team_id for row in rows if row.sales_team_id},
    )
    await session.commit()
    raised = [
        run_notification(
            row.run_id,
            row.status,
            row.sales_team_id,
            row.error,
            (by_name.get(row.requested_by or ""), *members.get(row.sales_team_id or "", [])),
            now,
        )
        for row in rows
    ]
    return await _publish(publisher, raised)


async def _publish(publisher: Publisher, raised: list[NotificationRaised | None]) -> int:
    events = [event for event in raised if event is not None]
    await publish_notifications(publisher, events)
    return len(events)


class NotificationJobs:
    """The notification jobs of one process (run with the review jobs)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        settings: GatewaySettings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.publisher = publisher
        self.settings = settings
        self.transport = transport

    async def tick(self, now: datetime) -> dict[str, Any]:
        """Raise what is owed at `now`, then deliver due webhooks once."""
        raised = await self.raise_owed(now)
        return {**raised, "webhooks": await self.deliver(now)}

    async def raise_owed(self, now: datetime) -> dict[str, int]:
        """Raise the notifications owed at `now`: override outcomes, runs finished."""
        since = now - timedelta(hours=float(self.settings.notification_lookback_hours))
        async with self.sessionmaker() as session:
            overrides = await notify_overrides(session, self.publisher, since, now)
            finished = await notify_runs(session, self.publisher, since, now)
        return {"overrides": overrides, "runs": finished}

    async def deliver(self, now: datetime, stop: asyncio.Event | None = None) -> Any:
        """Deliver the webhooks due at `now` once (a slow receiver holds only this); once `stop`
        is set, the POSTs in flight are abandoned and their deliveries stay pending."""
        async with (
            self.sessionmaker() as session,
            httpx.AsyncClient(
                timeout=self.settings.webhook_timeout_seconds, transport=self.transport
            ) as client,
        ):
            return await webhooks.deliver(session, client, self.settings, now, stop)
