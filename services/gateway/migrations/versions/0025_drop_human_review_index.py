"""The review job finds unopened cases by scored batch: the partial index of human_review loans
that its old scan read is written on every scored loan and read by no query.

Revision ID: 0025_drop_human_review_index
Revises: 0024_projector_replaying
Create Date: 2026-12-07 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_drop_human_review_index"
down_revision: str | None = "0024_projector_replaying"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("loan_scores_human_review", table_name="loan_scores", schema="gateway")


def downgrade() -> None:
    op.create_index(
        "loan_scores_human_review",
        "loan_scores",
        ["loan_id"],
        schema="gateway",
        postgresql_where=sa.text("routing_decision = 'human_review'"),
    )
