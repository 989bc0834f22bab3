"""Audit log queries: newest first, keyset on (occurred_at, event_id), filtered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.tables import audit_log

c = audit_log.c
AuditKey = tuple[datetime, UUID]


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What `GET /admin/audit` filters on."""

    actor_id: UUID | None = None
    action: str | None = None
    outcome: str | None = None
    source: str | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_query(filters: AuditFilters, after: AuditKey | None) -> Select[Any]:
    """Audit rows newest first after the keyset position `after`."""
    query = select(audit_log)
    for column, value in (
        (c.actor_id, filters.actor_id),
        (c.action, filters.action),
        (c.outcome, filters.outcome),
        (c.source, filters.source),
        (c.request_id, filters.request_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(c.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(c.occurred_at < filters.until)
    if after is not None:
        query = query.where(tuple_(c.occurred_at, c.event_id) < tuple_(*after))
    return query.order_by(c.occurred_at.desc(), c.event_id.desc())


async def list_audit(
    session: AsyncSession, filters: AuditFilters, after: AuditKey | None, limit: int
) -> list[Any]:
    """One page of the audit log."""
    return list(await session.execute(audit_query(filters, after).limit(limit)))
