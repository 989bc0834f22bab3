"""reporting folds reviews.v1 for the decision tape (SPEC §8)

`review_cases` holds each case's lifecycle state (contracts.review_fold), `review_events` the ids
of the review events applied (a redelivery changes nothing), `decisions` every loan's decision
(final, or awaiting a second person's approval of an override) and `decided_runs` what deciding
a run needs: its loan count once it completed, and when it was decided.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 01:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "reporting"


def upgrade() -> None:
    op.create_table(
        "review_cases",
        sa.Column("case_id", sa.Uuid(), primary_key=True),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "review_events",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        schema=SCHEMA,
    )
    op.create_table(
        "decisions",
        sa.Column("loan_id", sa.Uuid(), primary_key=True),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("decision_type", sa.Text(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("terms", sa.Text()),
        sa.Column("conditions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("decided_by", sa.Uuid()),
        sa.Column("approved_by", sa.Uuid()),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("final_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index("decisions_run_seq", "decisions", ["run_id", "seq"], schema=SCHEMA)
    # Counting a run's final decisions after each event stays an index-only count.
    op.create_index(
        "decisions_run_final",
        "decisions",
        ["run_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("final"),
    )
    op.create_table(
        "decided_runs",
        sa.Column("run_id", sa.Uuid(), primary_key=True),
        sa.Column("total_loans", sa.Integer()),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    # Runs completed before this revision: their decisions, read from reviews.v1 by the new
    # consumer group from the log's beginning, decide them too.
    op.execute(
        "INSERT INTO reporting.decided_runs (run_id, total_loans) "
        "SELECT run_id, total_loans FROM reporting.runs WHERE status = 'completed'"
    )


def downgrade() -> None:
    op.drop_table("decided_runs", schema=SCHEMA)
    op.drop_index("decisions_run_final", table_name="decisions", schema=SCHEMA)
    op.drop_index("decisions_run_seq", table_name="decisions", schema=SCHEMA)
    op.drop_table("decisions", schema=SCHEMA)
    op.drop_table("review_events", schema=SCHEMA)
    op.drop_table("review_cases", schema=SCHEMA)
