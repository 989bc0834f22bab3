"""Request and response shapes of notifications and team webhooks (SPEC §8)."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, HttpUrl

from contracts.notifications import NotificationKind, Severity
from services.gateway.patterns import NO_NUL


class NotificationView(BaseModel):
    """One notification as its recipient sees it."""

    notification_id: UUID
    kind: NotificationKind
    severity: Severity
    title: str
    message: str
    team_id: str | None
    run_id: UUID | None
    case_id: UUID | None
    decision_id: UUID | None
    occurred_at: datetime
    read: bool


class NotificationPage(BaseModel):
    """One page of the user's notifications, newest first."""

    items: list[NotificationView]
    total: int = Field(description="How many match the filter.")
    unread: int = Field(description="How many of the user's notifications are unread.")
    skip: int
    limit: int


class ReadAllAnswer(BaseModel):
    """Every notification raised up to `read_through` is read."""

    read_through: datetime | None = Field(description="Your newest notification's time.")
    unread: int = Field(description="Unread notifications left (raised since).")


class WebhookBody(BaseModel):
    """A team's webhook: where to POST and the shared secret that signs each body."""

    model_config = {"extra": "forbid"}

    url: HttpUrl = Field(description="http(s) URL that receives the POSTs.")
    secret: str = Field(
        min_length=16,
        max_length=256,
        pattern=NO_NUL,
        description="HMAC-SHA256 key; never shown again.",
    )


class WebhookView(BaseModel):
    """A team's webhook (the secret is never shown)."""

    team_id: str
    url: str
    secret_set: bool = True
    created_at: datetime
    updated_at: datetime


class AttemptView(BaseModel):
    """One POST of a delivery."""

    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryView(BaseModel):
    """One notification's delivery to the team's webhook, with every try."""

    delivery_id: UUID
    notification_id: UUID
    kind: str
    title: str
    state: str = Field(description="pending, delivered or failed.")
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next try.")
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    tries: list[AttemptView]
