"""Initial gateway schema: identity, read models, projector state.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 09:49:49.456120
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
        "batch_exception_counts",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("batch_seq", sa.Integer(), nullable=False),
        sa.Column("exception_type", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "batch_seq", "exception_type", "severity"),
        schema="gateway",
    )
    op.create_table(
        "batch_stats",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("batch_seq", sa.Integer(), nullable=False),
        sa.Column("loans", sa.Integer(), nullable=False),
        sa.Column("to_purchase", sa.Integer(), nullable=False),
        sa.Column("projected", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("exceptions", sa.Integer(), nullable=False),
        sa.Column("present_fields", sa.BigInteger(), nullable=False),
        sa.Column("validity_420", sa.BigInteger(), nullable=False),
        sa.Column("unique_loans", sa.BigInteger(), nullable=False),
        sa.Column("rules_passed", sa.BigInteger(), nullable=False),
        sa.Column("dq_score", sa.Numeric(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "batch_seq"),
        schema="gateway",
    )
    op.create_table(
        "dead_letters",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
        schema="gateway",
    )
    op.create_index(
        "dead_letters_newest", "dead_letters", ["occurred_at"], unique=False, schema="gateway"
    )
    op.create_table(
        "loan_exceptions",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.SmallInteger(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("sales_team_id", sa.Text(), nullable=True),
        sa.Column("seller_loan_number", sa.Text(), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("exception_type", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("rejection_criteria", sa.Text(), nullable=False),
        sa.Column("disposition", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_order", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "seq", "ordinal"),
        schema="gateway",
    )
    op.create_index(
        "loan_exceptions_newest",
        "loan_exceptions",
        ["run_order", "run_id", "seq", "ordinal"],
        unique=False,
        schema="gateway",
    )
    op.create_index(
        "loan_exceptions_run_type",
        "loan_exceptions",
        ["run_id", "exception_type", "seq", "ordinal"],
        unique=False,
        schema="gateway",
    )
    op.create_index(
        "loan_exceptions_team_newest",
        "loan_exceptions",
        ["sales_team_id", "run_order", "run_id", "seq", "ordinal"],
        unique=False,
        schema="gateway",
    )
    op.create_index(
        "loan_exceptions_type_newest",
        "loan_exceptions",
        ["exception_type", "run_order", "run_id", "seq", "ordinal"],
        unique=False,
        schema="gateway",
    )
    op.create_table(
        "loan_facts",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("sales_team_id", sa.Text(), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("seller_loan_number", sa.Text(), nullable=True),
        sa.Column("loan_amount", sa.Text(), nullable=True),
        sa.Column("note_rate", sa.Text(), nullable=True),
        sa.Column("ltv_ratio", sa.Text(), nullable=True),
        sa.Column("dti_ratio", sa.Text(), nullable=True),
        sa.Column("credit_score", sa.Text(), nullable=True),
        sa.Column("property_type", sa.Text(), nullable=True),
        sa.Column("occupancy_status", sa.Text(), nullable=True),
        sa.Column("loan_purpose", sa.Text(), nullable=True),
        sa.Column("purchase_price", sa.Text(), nullable=True),
        sa.Column("appraisal_value", sa.Text(), nullable=True),
        sa.Column("invalid", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("extra", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("duplicate_of_file", sa.Text(), nullable=True),
        sa.Column("duplicate_of_row", sa.Integer(), nullable=True),
        sa.Column("disposition", sa.Text(), nullable=False),
        sa.Column("pricing_spread", sa.Text(), nullable=True),
        sa.Column("final_price", sa.Text(), nullable=True),
        sa.Column("exceptions_count", sa.SmallInteger(), nullable=False),
        sa.Column("dq_score", sa.Numeric(), nullable=False),
        sa.Column("rule_set_version", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq"),
        schema="gateway",
    )
    op.create_index(
        "loan_facts_run_disposition_seq",
        "loan_facts",
        ["run_id", "disposition", "seq"],
        unique=False,
        schema="gateway",
    )
    op.create_table(
        "projector_positions",
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition"),
        schema="gateway",
    )
    op.create_table(
        "projector_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name="projector_state_single_row"),
        sa.PrimaryKeyConstraint("id"),
        schema="gateway",
    )
    op.create_table(
        "report_files",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key"),
        schema="gateway",
    )
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti"),
        schema="gateway",
    )
    op.create_index(
        "revoked_tokens_expires_at",
        "revoked_tokens",
        ["expires_at"],
        unique=False,
        schema="gateway",
    )
    op.create_table(
        "run_batches",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("batch_seq", sa.Integer(), nullable=False),
        sa.Column("loan_count", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "stage", "batch_seq"),
        schema="gateway",
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("last_phase", sa.Text(), nullable=True),
        sa.Column("failed_phase", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("source_kind", sa.Text(), nullable=True),
        sa.Column("source_location", sa.Text(), nullable=True),
        sa.Column("folder", sa.Text(), nullable=True),
        sa.Column("sales_team_id", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=True),
        sa.Column("parent_run_id", sa.Uuid(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("irr_target", sa.Text(), nullable=True),
        sa.Column("pdate", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_weekday", sa.SmallInteger(), nullable=True),
        sa.Column("run_weekday_name", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tape_ingested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outputs_written_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("total_loans", sa.BigInteger(), nullable=True),
        sa.Column("total_balance", sa.Text(), nullable=True),
        sa.Column("batch_count", sa.Integer(), nullable=True),
        sa.Column("duplicates", sa.Integer(), nullable=True),
        sa.Column("files", sa.ARRAY(sa.Text()), nullable=True),
        sa.Column("exceptions_count", sa.BigInteger(), nullable=True),
        sa.Column("to_purchase", sa.BigInteger(), nullable=True),
        sa.Column("projected", sa.BigInteger(), nullable=True),
        sa.Column("rejected", sa.BigInteger(), nullable=True),
        sa.Column("archive_input", sa.ARRAY(sa.Text()), nullable=True),
        sa.Column("archive_output", sa.ARRAY(sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
        schema="gateway",
    )
    op.create_index("runs_newest", "runs", ["created_at", "run_id"], unique=False, schema="gateway")
    op.create_index(
        "runs_status_newest",
        "runs",
        ["status", "created_at", "run_id"],
        unique=False,
        schema="gateway",
    )
    op.create_index(
        "runs_team_newest",
        "runs",
        ["sales_team_id", "created_at", "run_id"],
        unique=False,
        schema="gateway",
    )
    op.create_index(
        "runs_weekday_newest",
        "runs",
        ["run_weekday", "created_at", "run_id"],
        unique=False,
        schema="gateway",
    )
    op.create_table(
        "tapes",
        sa.Column("tape_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("max_row", sa.Integer(), nullable=False),
        sa.Column("expected_rows", sa.Integer(), nullable=True),
        sa.Column("pdate", sa.Date(), nullable=True),
        sa.Column("irr_target", sa.Text(), nullable=True),
        sa.Column("sales_team_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("tape_id"),
        schema="gateway",
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        schema="gateway",
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("team_id", sa.Text(), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("(role = 'sales_team') = (team_id IS NOT NULL)", name="users_team_role"),
        sa.CheckConstraint("role IN ('admin', 'analyst', 'sales_team')", name="users_role"),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["gateway.teams.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
        schema="gateway",
    )
    # The projector's generation row exists from the start; rebuilds only ever update it.
    op.execute("INSERT INTO gateway.projector_state (id, generation) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("users", schema="gateway")
    op.drop_table("teams", schema="gateway")
    op.drop_table("tapes", schema="gateway")
    op.drop_index("runs_weekday_newest", table_name="runs", schema="gateway")
    op.drop_index("runs_team_newest", table_name="runs", schema="gateway")
    op.drop_index("runs_status_newest", table_name="runs", schema="gateway")
    op.drop_index("runs_newest", table_name="runs", schema="gateway")
    op.drop_table("runs", schema="gateway")
    op.drop_table("run_batches", schema="gateway")
    op.drop_index("revoked_tokens_expires_at", table_name="revoked_tokens", schema="gateway")
    op.drop_table("revoked_tokens", schema="gateway")
    op.drop_table("report_files", schema="gateway")
    op.drop_table("projector_state", schema="gateway")
    op.drop_table("projector_positions", schema="gateway")
    op.drop_index("loan_facts_run_disposition_seq", table_name="loan_facts", schema="gateway")
    op.drop_table("loan_facts", schema="gateway")
    op.drop_index("loan_exceptions_type_newest", table_name="loan_exceptions", schema="gateway")
    op.drop_index("loan_exceptions_team_newest", table_name="loan_exceptions", schema="gateway")
    op.drop_index("loan_exceptions_run_type", table_name="loan_exceptions", schema="gateway")
    op.drop_index("loan_exceptions_newest", table_name="loan_exceptions", schema="gateway")
    op.drop_table("loan_exceptions", schema="gateway")
    op.drop_index("dead_letters_newest", table_name="dead_letters", schema="gateway")
    op.drop_table("dead_letters", schema="gateway")
    op.drop_table("batch_stats", schema="gateway")
    op.drop_table("batch_exception_counts", schema="gateway")
