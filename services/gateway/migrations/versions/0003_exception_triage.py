"""Exception triage (SPEC §7): exception ids on loan_exceptions, the triage read models, and the
role `senior_analyst`.

Revision ID: 0003_exception_triage
Revises: 0002_token_validity
Create Date: 2026-12-06 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from contracts.ids import NS

revision: str = "0003_exception_triage"
down_revision: str | None = "0002_token_validity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES_BEFORE = "role IN ('admin', 'analyst', 'sales_team')"
ROLES_AFTER = "role IN ('admin', 'analyst', 'senior_analyst', 'sales_team')"


def upgrade() -> None:
    # uuid_generate_v5 is immutable, so the exception id can be a stored generated column.
    op.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
    op.add_column(
        "loan_exceptions",
        sa.Column(
            "exception_id",
            sa.Uuid(),
            sa.Computed(
                f"uuid_generate_v5('{NS}'::uuid, loan_id::text || '/' || exception_type)",
                persisted=True,
            ),
            nullable=True,
        ),
        schema="gateway",
    )
    op.create_index(
        "loan_exceptions_exception_id",
        "loan_exceptions",
        ["exception_id"],
        schema="gateway",
    )
    op.create_index("loan_exceptions_loan", "loan_exceptions", ["loan_id"], schema="gateway")
    op.create_table(
        "exception_triage",
        sa.Column("exception_id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("exception_type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("assignee", sa.Uuid(), nullable=True),
        sa.Column("waiver_requested_by", sa.Uuid(), nullable=True),
        sa.Column("actions", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("exception_id"),
        schema="gateway",
    )
    op.create_index("exception_triage_status", "exception_triage", ["status"], schema="gateway")
    op.create_index("exception_triage_assignee", "exception_triage", ["assignee"], schema="gateway")
    op.create_table(
        "exception_actions",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("exception_id", sa.Uuid(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("assignee", sa.Uuid(), nullable=True),
        sa.Column("from_status", sa.Text(), nullable=False),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
        schema="gateway",
    )
    op.create_index(
        "exception_actions_history",
        "exception_actions",
        ["exception_id", "offset"],
        schema="gateway",
    )
    op.drop_constraint("users_role", "users", schema="gateway", type_="check")
    op.create_check_constraint("users_role", "users", ROLES_AFTER, schema="gateway")


def downgrade() -> None:
    op.execute("DELETE FROM gateway.users WHERE role = 'senior_analyst'")
    op.drop_constraint("users_role", "users", schema="gateway", type_="check")
    op.create_check_constraint("users_role", "users", ROLES_BEFORE, schema="gateway")
    op.drop_table("exception_actions", schema="gateway")
    op.drop_table("exception_triage", schema="gateway")
    op.drop_index("loan_exceptions_loan", table_name="loan_exceptions", schema="gateway")
    op.drop_index("loan_exceptions_exception_id", table_name="loan_exceptions", schema="gateway")
    op.drop_column("loan_exceptions", "exception_id", schema="gateway")
