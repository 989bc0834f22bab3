"""Reconciliation: results per run, findings, people's reviews, reprocess edits (SPEC §7).

Revision ID: 0011_reconciliation
Revises: 0010_corrections_and_lineage
Create Date: 2026-12-06 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_reconciliation"
down_revision: str | None = "0010_corrections_and_lineage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliations",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("matched", sa.BigInteger(), nullable=False),
        sa.Column("mismatched", sa.BigInteger(), nullable=False),
        sa.Column("source_only", sa.BigInteger(), nullable=False),
        sa.Column("downstream_only", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
        schema="gateway",
    )
    op.create_table(
        "reconciliation_findings",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("finding_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("locator", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("loan_id", sa.Uuid(), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("row", sa.Integer(), nullable=True),
        sa.Column("seller_loan_number", sa.Text(), nullable=True),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "ordinal"),
        sa.UniqueConstraint("finding_id"),
        schema="gateway",
    )
    op.create_index(
        "reconciliation_findings_kind",
        "reconciliation_findings",
        ["run_id", "kind", "ordinal"],
        schema="gateway",
    )
    op.create_table(
        "reconciliation_reviews",
        sa.Column("finding_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("reviewed_by", sa.Text(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("finding_id"),
        schema="gateway",
    )
    op.create_table(
        "run_edits",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("edits", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
        schema="gateway",
    )


def downgrade() -> None:
    op.drop_table("run_edits", schema="gateway")
    op.drop_table("reconciliation_reviews", schema="gateway")
    op.drop_index(
        "reconciliation_findings_kind", table_name="reconciliation_findings", schema="gateway"
    )
    op.drop_table("reconciliation_findings", schema="gateway")
    op.drop_table("reconciliations", schema="gateway")
