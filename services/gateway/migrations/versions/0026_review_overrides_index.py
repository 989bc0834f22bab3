"""The override notification job looks for overrides decided since a moment: a partial index of
the (rare) overrides by time, instead of a scan of every decision (measured at 3.3 million
decisions: 285 ms of three PostgreSQL processes on every tick, 10 s).

Revision ID: 0026_review_overrides_index
Revises: 0025_drop_human_review_index
Create Date: 2026-12-07 11:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_review_overrides_index"
down_revision: str | None = "0025_drop_human_review_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "review_decisions_overrides",
        "review_decisions",
        ["override_at", "decision_id"],
        schema="gateway",
        postgresql_where=sa.text("is_override"),
    )


def downgrade() -> None:
    op.drop_index("review_decisions_overrides", table_name="review_decisions", schema="gateway")
