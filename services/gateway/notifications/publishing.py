"""Publishing notifications.v1 events: a notification keyed by its id, a read by its user."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.notifications import NotificationRaised, NotificationsRead
from contracts.topics import NOTIFICATIONS
from services.gateway import acting
from services.gateway.deps import Publisher


def key_of(event: NotificationRaised | NotificationsRead) -> str:
    """The Kafka key: the notification id, or the reader's user id."""
    return str(event.user_id if isinstance(event, NotificationsRead) else event.event_id)


async def publish_notifications(
    publisher: Publisher, events: Sequence[NotificationRaised | NotificationsRead]
) -> None:
    """Publish notification events, many in flight at once."""
    await acting.publish_all(publisher, NOTIFICATIONS, events, key_of)
