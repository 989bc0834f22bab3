"""each run's final decisions are counted as they change, not counted again after every event

Whether a completed run has every decision it needs was a count of its final decisions after
each review event: at 634,000 final decisions one count took 48 ms, and a million-loan run
brings about 2,000 auto-decision events after it completes, so deciding one run cost PostgreSQL
about a minute. `final_counts` holds each run's count. Statement triggers on `decisions` keep it
from the rows each statement inserted, updated or deleted (their transition tables), whatever
statement changed them, in the statement's own transaction; the counts start from the stored
decisions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "reporting"

# One function for the three triggers: each branch reads only the transition tables its
# operation has (PL/pgSQL plans a statement when it first runs it). Counter rows are written in
# run order, so two transactions touching the same runs lock them in the same order.
COUNT_FUNCTION = """
CREATE FUNCTION reporting.count_final_decisions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO reporting.final_counts AS counted (run_id, final)
        SELECT run_id, count(*) FROM new_rows WHERE final GROUP BY run_id ORDER BY run_id
        ON CONFLICT (run_id) DO UPDATE SET final = counted.final + excluded.final;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO reporting.final_counts AS counted (run_id, final)
        SELECT run_id, -count(*) FROM old_rows WHERE final GROUP BY run_id ORDER BY run_id
        ON CONFLICT (run_id) DO UPDATE SET final = counted.final + excluded.final;
    ELSE
        INSERT INTO reporting.final_counts AS counted (run_id, final)
        SELECT run_id, sum(change) FROM (
            SELECT run_id, 1 AS change FROM new_rows WHERE final
            UNION ALL
            SELECT run_id, -1 AS change FROM old_rows WHERE final
        ) AS changes
        GROUP BY run_id HAVING sum(change) <> 0 ORDER BY run_id
        ON CONFLICT (run_id) DO UPDATE SET final = counted.final + excluded.final;
    END IF;
    RETURN NULL;
END
$$
"""

# Truncating the decisions forgets their counts (transition tables do not see a TRUNCATE).
FORGET_FUNCTION = """
CREATE FUNCTION reporting.forget_final_counts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE reporting.final_counts;
    RETURN NULL;
END
$$
"""

TRIGGERS = {
    "decisions_count_inserted": "INSERT ON reporting.decisions REFERENCING NEW TABLE AS new_rows",
    "decisions_count_updated": (
        "UPDATE ON reporting.decisions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "decisions_count_deleted": "DELETE ON reporting.decisions REFERENCING OLD TABLE AS old_rows",
}


def upgrade() -> None:
    op.create_table(
        "final_counts",
        sa.Column("run_id", sa.Uuid(), primary_key=True),
        sa.Column("final", sa.Integer(), nullable=False),
        schema=SCHEMA,
    )
    op.execute("LOCK TABLE reporting.decisions IN SHARE MODE")
    op.execute(COUNT_FUNCTION)
    for name, event in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} "
            "FOR EACH STATEMENT EXECUTE FUNCTION reporting.count_final_decisions()"
        )
    op.execute(FORGET_FUNCTION)
    op.execute(
        "CREATE TRIGGER decisions_count_truncated AFTER TRUNCATE ON reporting.decisions "
        "FOR EACH STATEMENT EXECUTE FUNCTION reporting.forget_final_counts()"
    )
    op.execute(
        "INSERT INTO reporting.final_counts (run_id, final) "
        "SELECT run_id, count(*) FROM reporting.decisions WHERE final GROUP BY run_id"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER decisions_count_truncated ON reporting.decisions")
    op.execute("DROP FUNCTION reporting.forget_final_counts()")
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON reporting.decisions")
    op.execute("DROP FUNCTION reporting.count_final_decisions()")
    op.drop_table("final_counts", schema=SCHEMA)
