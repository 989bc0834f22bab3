"""Fold notifications.v1 into `notifications`, `notification_reads` and
`notification_read_marks`.

Idempotent and order-free across partitions: a notification raised twice (same id) is one row;
a read of one notification is its own row (its raising may come later in a rebuild: another
partition); "mark all read" keeps the latest `read_through` per user, and a notification is read
when it has a read row or was raised at or before its user's mark.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from contracts.codec import decode_union
from contracts.notifications import NOTIFICATION_EVENT, NotificationRaised, NotificationsRead
from services.gateway.patterns import storable
from services.gateway.tables import SCHEMA


@dataclass(frozen=True, slots=True)
class PositionedNotification:
    """A notifications.v1 event with where it sits in the log."""

    partition: int
    offset: int
    event: NotificationRaised | NotificationsRead


def decode_notification(partition: int, offset: int, value: bytes) -> PositionedNotification:
    """One notifications.v1 record, validated."""
    return PositionedNotification(partition, offset, decode_union(value, NOTIFICATION_EVENT))


async def write_notifications(
    conn: asyncpg.Connection, items: list[PositionedNotification]
) -> None:
    """Apply a chunk's notification events (inside the chunk's transaction)."""
    raised = [item.event for item in items if isinstance(item.event, NotificationRaised)]
    reads = [item.event for item in items if isinstance(item.event, NotificationsRead)]
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.notifications (notification_id, kind, severity, title, message, "
        "subject_id, team_id, run_id, case_id, decision_id, recipients, occurred_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
        "ON CONFLICT DO NOTHING",
        [
            (
                event.event_id,
                event.kind,
                event.severity,
                storable(event.title),
                storable(event.message),
                event.subject_id,
                storable(event.team_id),
                event.run_id,
                event.case_id,
                event.decision_id,
                list(event.recipients),
                event.occurred_at,
            )
            for event in raised
        ],
    )
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.notification_reads (user_id, notification_id, event_id, read_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        [
            (event.user_id, notification, event.event_id, event.occurred_at)
            for event in reads
            for notification in event.notification_ids
        ],
    )
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.notification_read_marks AS m (user_id, read_through, event_id) "
        "VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET "
        "read_through = excluded.read_through, event_id = excluded.event_id "
        "WHERE excluded.read_through > m.read_through",
        [
            (event.user_id, event.read_through, event.event_id)
            for event in reads
            if event.read_through is not None
        ],
    )
