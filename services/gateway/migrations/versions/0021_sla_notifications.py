"""SLA marks on review cases, notifications and their read marks (read models of
notifications.v1), and team webhooks with their delivery log (SPEC §8).

Revision ID: 0021_sla_notifications
Revises: 0020_review_cases
Create Date: 2026-12-07 01:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_sla_notifications"
down_revision: str | None = "0020_review_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "gateway"
SLA_MARKS = ("sla_warned_at", "sla_breached_at", "escalated_at")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    for name in SLA_MARKS:
        op.add_column("review_cases", _ts(name), schema=SCHEMA)
    op.create_table(
        "notifications",
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("decision_id", sa.Uuid(), nullable=True),
        sa.Column("recipients", sa.ARRAY(sa.Uuid()), nullable=False),
        _ts("occurred_at", nullable=False),
        sa.PrimaryKeyConstraint("notification_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "notifications_subject",
        "notifications",
        ["kind", "subject_id"],
        unique=True,
        schema=SCHEMA,
    )
    op.create_index(
        "notifications_recipients",
        "notifications",
        ["recipients"],
        postgresql_using="gin",
        schema=SCHEMA,
    )
    op.create_index(
        "notifications_team", "notifications", ["team_id", "occurred_at"], schema=SCHEMA
    )
    op.create_table(
        "notification_reads",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        _ts("read_at", nullable=False),
        sa.PrimaryKeyConstraint("user_id", "notification_id"),
        schema=SCHEMA,
    )
    op.create_table(
        "notification_read_marks",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        _ts("read_through", nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
        schema=SCHEMA,
    )
    op.create_table(
        "team_webhooks",
        sa.Column("team_id", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.ForeignKeyConstraint(["team_id"], [f"{SCHEMA}.teams.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("team_id"),
        schema=SCHEMA,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at", nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("delivered_at"),
        sa.PrimaryKeyConstraint("delivery_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "webhook_deliveries_notification",
        "webhook_deliveries",
        ["notification_id", "team_id"],
        unique=True,
        schema=SCHEMA,
    )
    op.create_index(
        "webhook_deliveries_due",
        "webhook_deliveries",
        ["state", "next_attempt_at"],
        schema=SCHEMA,
    )
    op.create_index(
        "webhook_deliveries_team",
        "webhook_deliveries",
        ["team_id", "created_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _ts("attempted_at", nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", "attempt"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "webhook_attempts",
        "webhook_deliveries",
        "team_webhooks",
        "notification_read_marks",
        "notification_reads",
        "notifications",
    ):
        op.drop_table(table, schema=SCHEMA)
    for name in SLA_MARKS:
        op.drop_column("review_cases", name, schema=SCHEMA)
