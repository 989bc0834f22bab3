"""Audit log read model (SPEC §7): one row per audit.v1 event.

Revision ID: 0004_audit_log
Revises: 0003_exception_triage
Create Date: 2026-12-06 22:31:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_audit_log"
down_revision: str | None = "0003_exception_triage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("actor_role", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("target", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("client_address", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
        schema="gateway",
    )
    op.create_index("audit_log_newest", "audit_log", ["occurred_at", "event_id"], schema="gateway")
    op.create_index(
        "audit_log_actor_newest",
        "audit_log",
        ["actor_id", "occurred_at", "event_id"],
        schema="gateway",
    )
    op.create_index(
        "audit_log_action_newest",
        "audit_log",
        ["action", "occurred_at", "event_id"],
        schema="gateway",
    )


def downgrade() -> None:
    op.drop_table("audit_log", schema="gateway")
