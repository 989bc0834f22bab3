"""Notifications on `notifications.v1` (SPEC §8): what a person should know, for whom.

`NotificationRaised` (keyed by notification id) names its recipients, resolved by the gateway's
jobs when they raise it; its id is deterministic (`uuid5(NS, "notification/{kind}/{subject}")`
where the subject is the case, decision or run), so a job re-run or a second gateway replica
raises it once. `NotificationsRead` (keyed by user id) marks some, or all up to a time, read for
one user. A rebuild of the log restores both the list and its read state.
"""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, TypeAdapter

from contracts.base import Contract

NotificationKind = Literal[
    "sla_warning",
    "sla_breach",
    "escalation",
    "override_approved",
    "override_rejected",
    "run_completed",
    "run_failed",
]
NOTIFICATION_KINDS: tuple[NotificationKind, ...] = (
    "sla_warning",
    "sla_breach",
    "escalation",
    "override_approved",
    "override_rejected",
    "run_completed",
    "run_failed",
)
Severity = Literal["info", "warning", "critical"]


class NotificationRaised(Contract):
    """Something happened that the recipients should know."""

    event_type: Literal["notification.raised"] = "notification.raised"
    schema_version: int = Field(default=1, description="Version of this event's schema.")
    event_id: UUID = Field(description="The notification id: one per kind and subject.")
    kind: NotificationKind
    severity: Severity
    title: str = Field(min_length=1, max_length=200, examples=["SLA breached"])
    message: str = Field(max_length=4000)
    subject_id: UUID = Field(description="The case, decision or run it is about.")
    team_id: str | None = Field(None, description="The sales team of the run it concerns.")
    run_id: UUID | None = None
    case_id: UUID | None = None
    decision_id: UUID | None = None
    recipients: tuple[UUID, ...] = Field(description="The users who see it.")
    occurred_at: datetime


class NotificationsRead(Contract):
    """One user read notifications: the listed ones, or every one raised up to `read_through`."""

    event_type: Literal["notification.read"] = "notification.read"
    schema_version: int = Field(default=1, description="Version of this event's schema.")
    event_id: UUID
    user_id: UUID
    notification_ids: tuple[UUID, ...] = Field(
        (), description="The notifications read (empty when `read_through` is given)."
    )
    read_through: datetime | None = Field(
        None, description="Every notification raised at or before this time is read."
    )
    occurred_at: datetime


NOTIFICATION_EVENTS: tuple[type[Contract], ...] = (NotificationRaised, NotificationsRead)
AnyNotificationEvent = Annotated[
    NotificationRaised | NotificationsRead, Field(discriminator="event_type")
]
NOTIFICATION_EVENT: TypeAdapter[AnyNotificationEvent] = TypeAdapter(AnyNotificationEvent)
