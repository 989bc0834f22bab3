"""reporting schema: runs and their dispositioned loans

Revision ID: 0001
Revises:
Create Date: 2026-11-23 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("source", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("total_loans", sa.Integer(), nullable=True),
        sa.Column(
            "total_balance",
            sa.Text(),
            nullable=True,
            comment="Exact Decimal text from the tape-ingested event.",
        ),
        sa.Column("files", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("dispositioned", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_phase", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("run_id"),
        schema="reporting",
    )
    op.create_table(
        "loans",
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.Text(), nullable=False),
        sa.Column(
            "event", sa.Text(), nullable=False, comment="The LoanDispositioned event as JSON."
        ),
        sa.PrimaryKeyConstraint("loan_id"),
        schema="reporting",
    )
    op.create_index("loans_run_seq", "loans", ["run_id", "seq"], unique=False, schema="reporting")


def downgrade() -> None:
    op.drop_index("loans_run_seq", table_name="loans", schema="reporting")
    op.drop_table("loans", schema="reporting")
    op.drop_table("runs", schema="reporting")
