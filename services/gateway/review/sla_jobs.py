"""The SLA and auto-assign jobs (see `sla.py` for the rules): read the open cases near or past
their deadline, publish the marks due on reviews.v1 and their notifications on notifications.v1.

The notifications go first: should the process stop between the two, the next run publishes the
marks again with the same notification ids, and the fold keeps one of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.notifications import NotificationKind, NotificationRaised
from contracts.reviews import ReviewCaseEscalated, ReviewEvent, ReviewSlaBreached, ReviewSlaWarned
from services.gateway.deps import Publisher
from services.gateway.notifications.domain import CaseNotice, sla_notifications
from services.gateway.notifications.publishing import publish_notifications
from services.gateway.review import sla_queries as queries
from services.gateway.review.service import publish_all
from services.gateway.review.sla import SlaCase, auto_assignments, escalation_targets, sla_events
from services.gateway.settings import GatewaySettings

PAGE = 1000
ASSIGN_PAGE = 500
REVIEWERS = ("analyst", "senior_analyst")
KIND_OF_EVENT: dict[type[ReviewEvent], NotificationKind] = {
    ReviewSlaWarned: "sla_warning",
    ReviewSlaBreached: "sla_breach",
    ReviewCaseEscalated: "escalation",
}


@dataclass(frozen=True, slots=True)
class SlaOutcome:
    """What one SLA run published."""

    marks: int = 0
    notifications: int = 0
    assigned: int = 0


def _case(row: Any) -> SlaCase:
    return SlaCase(
        case_id=row.case_id,
        loan_id=row.loan_id,
        run_id=row.run_id,
        status=row.status,
        sla_deadline=row.sla_deadline,
        releases=row.releases,
        assignee=row.assignee,
        warned=row.sla_warned_at is not None,
        breached=row.sla_breached_at is not None,
        escalated=row.escalated_at is not None,
    )


def _notice(row: Any) -> CaseNotice:
    return CaseNotice(
        case_id=row.case_id,
        run_id=row.run_id,
        team_id=row.sales_team_id,
        seller_loan_number=row.seller_loan_number,
        sla_deadline=row.sla_deadline,
        assignee=row.assignee,
    )


async def mark_sla(
    session: AsyncSession,
    publisher: Publisher,
    settings: GatewaySettings,
    now: datetime,
    page: int = PAGE,
) -> SlaOutcome:
    """Publish every SLA warning, breach and escalation due at `now`, with their notifications."""
    seniors = tuple(await queries.users_with_roles(session, ("senior_analyst",)))
    escalate_to = escalation_targets(seniors, await queries.users_with_roles(session, ("admin",)))
    horizon = now + timedelta(hours=float(settings.review_warning_hours))
    marks, notified, after = 0, 0, None
    while True:
        rows = await queries.cases_due(session, horizon, page, after=after)
        await session.commit()
        events: list[ReviewEvent] = []
        notices: list[NotificationRaised] = []
        for row in rows:
            due = sla_events(_case(row), now, settings.review_warning_hours)
            kinds = [KIND_OF_EVENT[type(event)] for event in due]
            notices.extend(sla_notifications(_notice(row), kinds, seniors, escalate_to, now))
            events.extend(due)
        await publish_notifications(publisher, notices)
        await publish_all(publisher, events)
        marks, notified = marks + len(events), notified + len(notices)
        if len(rows) < page:
            return SlaOutcome(marks=marks, notifications=notified)
        after = (rows[-1].sla_deadline, rows[-1].case_id)


async def auto_assign(
    session: AsyncSession, publisher: Publisher, settings: GatewaySettings, now: datetime
) -> int:
    """Assign pending cases near their deadline to the least-loaded analysts; return how many."""
    horizon = now + timedelta(hours=float(settings.review_auto_assign_hours))
    rows = await queries.cases_due(session, horizon, ASSIGN_PAGE, pending_only=True)
    if not rows:
        await session.commit()
        return 0
    analysts = await queries.users_with_roles(session, REVIEWERS)
    load = await queries.active_counts(session, analysts)
    await session.commit()
    events = auto_assignments(
        [_case(row) for row in rows], load, now, settings.review_auto_assign_hours
    )
    await publish_all(publisher, events)
    return len(events)
