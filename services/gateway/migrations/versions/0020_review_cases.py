"""Credit review read models (SPEC §8): loan scores, model cards, review cases, their history
and every loan's decision.

Revision ID: 0020_review_cases
Revises: 0004_audit_log
Create Date: 2026-12-06 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020_review_cases"
down_revision: str | None = "0011_reconciliation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "gateway"


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    jsonb = postgresql.JSONB(astext_type=sa.Text())
    op.create_table(
        "loan_scores",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("batch_seq", sa.Integer(), nullable=False),
        sa.Column("seller_loan_number", sa.Text(), nullable=True),
        sa.Column("disposition", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("probability_default", sa.Text(), nullable=False),
        sa.Column("risk_category", sa.Text(), nullable=False),
        sa.Column("routing_decision", sa.Text(), nullable=False),
        sa.Column("routing_reason", sa.Text(), nullable=False),
        sa.Column("routing_triggers", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("policy_version", sa.Text(), nullable=False),
        sa.Column("positive_factors", jsonb, nullable=False),
        sa.Column("negative_factors", jsonb, nullable=False),
        sa.Column("features", jsonb, nullable=False),
        _ts("scored_at", nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq"),
        schema=SCHEMA,
    )
    op.create_index("loan_scores_loan", "loan_scores", ["loan_id"], schema=SCHEMA)
    op.create_index(
        "loan_scores_run_routing",
        "loan_scores",
        ["run_id", "routing_decision", "seq"],
        schema=SCHEMA,
    )
    op.create_index(
        "loan_scores_human_review",
        "loan_scores",
        ["loan_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("routing_decision = 'human_review'"),
    )
    op.create_table(
        "scored_batches",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("batch_seq", sa.Integer(), nullable=False),
        sa.Column("loans", sa.Integer(), nullable=False),
        sa.Column("auto_routed", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "batch_seq"),
        schema=SCHEMA,
    )
    op.create_table(
        "auto_decided_batches",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("batch_seq", sa.Integer(), nullable=False),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "batch_seq"),
        schema=SCHEMA,
    )
    op.create_table(
        "model_cards",
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("card", jsonb, nullable=False),
        _ts("loaded_at", nullable=False),
        sa.PrimaryKeyConstraint("model_name", "model_version"),
        schema=SCHEMA,
    )
    op.create_table(
        "review_cases",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("seller_loan_number", sa.Text(), nullable=True),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("routing_reason", sa.Text(), nullable=False),
        sa.Column("loan_amount", sa.Text(), nullable=True),
        _ts("scored_at", nullable=False),
        sa.Column("opened_priority_score", sa.SmallInteger(), nullable=False),
        sa.Column("opened_priority", sa.Text(), nullable=False),
        _ts("opened_at", nullable=False),
        _ts("sla_deadline", nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("assignee", sa.Uuid(), nullable=True),
        sa.Column("releases", sa.Integer(), nullable=False),
        sa.Column("actions", sa.Integer(), nullable=False),
        _ts("assigned_at"),
        _ts("started_at"),
        _ts("updated_at"),
        sa.Column("decision_id", sa.Uuid(), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        _ts("decided_at"),
        sa.Column("conditions", sa.SmallInteger(), nullable=False),
        sa.Column("fulfilled", sa.ARRAY(sa.SmallInteger()), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
        schema=SCHEMA,
    )
    op.create_index("review_cases_loan", "review_cases", ["loan_id"], unique=True, schema=SCHEMA)
    op.create_index("review_cases_run", "review_cases", ["run_id", "seq"], schema=SCHEMA)
    op.create_index(
        "review_cases_status_deadline", "review_cases", ["status", "sla_deadline"], schema=SCHEMA
    )
    op.create_index("review_cases_assignee", "review_cases", ["assignee", "status"], schema=SCHEMA)
    op.create_table(
        "review_actions",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("assignee", sa.Uuid(), nullable=True),
        sa.Column("from_status", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=True),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        _ts("occurred_at", nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
        schema=SCHEMA,
    )
    op.create_index(
        "review_actions_history", "review_actions", ["case_id", "offset"], schema=SCHEMA
    )

    op.create_table(
        "review_decisions",
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("decision_type", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=True),
        sa.Column("conditions", jsonb, nullable=False),
        sa.Column("fulfilled", sa.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("model_leaning", sa.Text(), nullable=True),
        sa.Column("is_override", sa.Boolean(), nullable=False),
        sa.Column("review_time_seconds", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_role", sa.Text(), nullable=False),
        _ts("decided_at", nullable=False),
        sa.Column("override_by", sa.Uuid(), nullable=True),
        _ts("override_at"),
        sa.Column("override_notes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("decision_id"),
        schema=SCHEMA,
    )
    op.create_index("review_decisions_run", "review_decisions", ["run_id", "seq"], schema=SCHEMA)
    op.create_index("review_decisions_loan", "review_decisions", ["loan_id"], schema=SCHEMA)
    op.create_index(
        "review_decisions_status", "review_decisions", ["status", "decided_at"], schema=SCHEMA
    )


def downgrade() -> None:
    for table in (
        "auto_decided_batches",
        "scored_batches",
        "review_decisions",
        "review_actions",
        "review_cases",
        "model_cards",
        "loan_scores",
    ):
        op.drop_table(table, schema=SCHEMA)
