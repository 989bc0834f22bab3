"""Decided runs (SPEC §8): when every loan of a run had its final decision.

Revision ID: 0022_decided_runs
Revises: 0021_sla_notifications
Create Date: 2026-12-07 01:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_decided_runs"
down_revision: str | None = "0021_sla_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column(
        "runs", sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("runs", "decided_at", schema=SCHEMA)
