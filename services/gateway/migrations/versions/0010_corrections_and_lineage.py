"""Governance read models: record corrections, loan batch positions, loans by id (SPEC §7).

Revision ID: 0010_corrections_and_lineage
Revises: 0001
Create Date: 2026-12-06 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_corrections_and_lineage"
down_revision: str | None = "0004_audit_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loan_corrections",
        sa.Column("correction_id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("sales_team_id", sa.Text(), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("seller_loan_number", sa.Text(), nullable=True),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("corrected_by", sa.Text(), nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("correction_id"),
        schema="gateway",
    )
    op.create_index(
        "loan_corrections_loan",
        "loan_corrections",
        ["loan_id", "corrected_at", "correction_id"],
        schema="gateway",
    )
    op.create_index(
        "loan_corrections_run",
        "loan_corrections",
        ["run_id", "corrected_at", "correction_id"],
        schema="gateway",
    )
    op.create_table(
        "batch_positions",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("batch_seq", sa.Integer(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "stage", "batch_seq"),
        schema="gateway",
    )
    op.create_index("loan_facts_loan_id", "loan_facts", ["loan_id"], schema="gateway")


def downgrade() -> None:
    op.drop_index("loan_facts_loan_id", table_name="loan_facts", schema="gateway")
    op.drop_table("batch_positions", schema="gateway")
    op.drop_index("loan_corrections_run", table_name="loan_corrections", schema="gateway")
    op.drop_index("loan_corrections_loan", table_name="loan_corrections", schema="gateway")
    op.drop_table("loan_corrections", schema="gateway")
