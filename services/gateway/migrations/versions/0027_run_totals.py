"""each run's totals are kept as its batches are projected, not summed again on every request

A run's summary summed its batches' statistics and exception counts, and its progress its
batches per stage, on every request: at a million loans (2,000 batches, 8,000 stage rows,
16,000 exception-count rows) that was 12 ms of PostgreSQL per summary and 4 ms per progress,
growing with the run, and the slowest answers of the API under load. Three tables hold the
totals per run (and stage, and exception type and severity). Statement triggers on the batch
tables keep them from the rows each statement inserted (their transition tables), in the
statement's own transaction; a statement that updates or deletes batch rows (the projector never
does) has its runs' totals counted again from the rows left. A TRUNCATE forgets the totals. The
totals start from the stored batches.

Revision ID: 0027_run_totals
Revises: 0026_review_overrides_index
Create Date: 2026-12-07 14:45:00
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from alembic import op

revision: str = "0027_run_totals"
down_revision: str | None = "0026_review_overrides_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "gateway"

STATS = (
    "loans",
    "to_purchase",
    "projected",
    "rejected",
    "exceptions",
    "present_fields",
    "validity_420",
    "unique_loans",
    "rules_passed",
)


@dataclass(frozen=True)
class Totals:
    """A table of per-run totals of a batch table: grouped by `keys`, each column an aggregate
    of the batch rows and the way a new total joins a kept one."""

    table: str
    source: str
    keys: tuple[str, ...]
    columns: dict[str, tuple[str, str]]  # column: (aggregate over batch rows, merge with kept)

    @property
    def function(self) -> str:
        return f"{SCHEMA}.keep_{self.table}"

    def aggregate(self, rows: str, where: str = "") -> str:
        keys = ", ".join(self.keys)
        aggregates = ", ".join(aggregate for aggregate, _ in self.columns.values())
        return f"SELECT {keys}, {aggregates} FROM {rows} {where} GROUP BY {keys} ORDER BY {keys}"

    def insert(self, rows: str, where: str = "", merge: bool = True) -> str:
        columns = ", ".join((*self.keys, *self.columns))
        into = f"INSERT INTO {SCHEMA}.{self.table} AS kept ({columns}) "
        if not merge:
            return into + self.aggregate(rows, where)
        updates = ", ".join(f"{column} = {how}" for column, (_, how) in self.columns.items())
        return (
            into + self.aggregate(rows, where) + f" ON CONFLICT ({', '.join(self.keys)}) "
            f"DO UPDATE SET {updates}"
        )

    def recount(self) -> str:
        """Count the touched runs' totals again from the batch rows left."""
        return (
            f"DELETE FROM {SCHEMA}.{self.table} WHERE run_id = ANY(touched);\n        "
            + self.insert(f"{SCHEMA}.{self.source}", "WHERE run_id = ANY(touched)", merge=False)
        )

    def keep_function(self) -> str:
        # Each branch reads only the transition tables its operation has (PL/pgSQL plans a
        # statement when it first runs it). Totals rows are written in key order, so two
        # transactions touching the same runs lock them in the same order.
        return f"""
CREATE FUNCTION {self.function}() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        {self.insert("new_rows")};
    ELSIF TG_OP = 'DELETE' THEN
        touched := ARRAY(SELECT DISTINCT run_id FROM old_rows ORDER BY run_id);
        {self.recount()};
    ELSE
        touched := ARRAY(
            SELECT run_id FROM old_rows UNION SELECT run_id FROM new_rows ORDER BY run_id
        );
        {self.recount()};
    END IF;
    RETURN NULL;
END
$$
"""

    def triggers(self) -> dict[str, str]:
        source = f"{SCHEMA}.{self.source}"
        return {
            f"{self.source}_keep_totals_inserted": (
                f"INSERT ON {source} REFERENCING NEW TABLE AS new_rows"
            ),
            f"{self.source}_keep_totals_updated": (
                f"UPDATE ON {source} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
            ),
            f"{self.source}_keep_totals_deleted": (
                f"DELETE ON {source} REFERENCING OLD TABLE AS old_rows"
            ),
        }


def _added(column: str) -> str:
    return f"kept.{column} + excluded.{column}"


TOTALS = (
    Totals(
        "run_totals",
        "batch_stats",
        ("run_id",),
        {
            **{column: (f"sum({column})", _added(column)) for column in STATS},
            "dq_score": ("sum(dq_score)", _added("dq_score")),
        },
    ),
    Totals(
        "run_stage_totals",
        "run_batches",
        ("run_id", "stage"),
        {
            "loans": ("sum(loan_count)", _added("loans")),
            "first_recorded_at": (
                "min(recorded_at)",
                "least(kept.first_recorded_at, excluded.first_recorded_at)",
            ),
            "last_recorded_at": (
                "max(recorded_at)",
                "greatest(kept.last_recorded_at, excluded.last_recorded_at)",
            ),
        },
    ),
    Totals(
        "run_exception_totals",
        "batch_exception_counts",
        ("run_id", "exception_type", "severity"),
        {"count": ("sum(count)", _added("count"))},
    ),
)

FORGET_FUNCTION = "gateway.forget_run_totals"


def upgrade() -> None:
    op.create_table(
        "run_totals",
        sa.Column("run_id", sa.Uuid(), primary_key=True),
        *(sa.Column(column, sa.BigInteger(), nullable=False) for column in STATS),
        sa.Column("dq_score", sa.Numeric(), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "run_stage_totals",
        sa.Column("run_id", sa.Uuid(), primary_key=True),
        sa.Column("stage", sa.Text(), primary_key=True),
        sa.Column("loans", sa.BigInteger(), nullable=False),
        sa.Column("first_recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "run_exception_totals",
        sa.Column("run_id", sa.Uuid(), primary_key=True),
        sa.Column("exception_type", sa.Text(), primary_key=True),
        sa.Column("severity", sa.Text(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        schema=SCHEMA,
    )
    # Truncating a batch table forgets the totals (transition tables do not see a TRUNCATE).
    op.execute(
        f"CREATE FUNCTION {FORGET_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        f"    EXECUTE format('DELETE FROM {SCHEMA}.%I', TG_ARGV[0]);\n"
        "    RETURN NULL;\n"
        "END\n$$"
    )
    for totals in TOTALS:
        op.execute(f"LOCK TABLE {SCHEMA}.{totals.source} IN SHARE MODE")
        op.execute(totals.keep_function())
        for name, event in totals.triggers().items():
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {totals.function}()"
            )
        op.execute(
            f"CREATE TRIGGER {totals.source}_forget_totals AFTER TRUNCATE ON "
            f"{SCHEMA}.{totals.source} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {FORGET_FUNCTION}('{totals.table}')"
        )
        op.execute(totals.insert(f"{SCHEMA}.{totals.source}", merge=False))


def downgrade() -> None:
    for totals in reversed(TOTALS):
        op.execute(f"DROP TRIGGER {totals.source}_forget_totals ON {SCHEMA}.{totals.source}")
        for name in totals.triggers():
            op.execute(f"DROP TRIGGER {name} ON {SCHEMA}.{totals.source}")
        op.execute(f"DROP FUNCTION {totals.function}()")
        op.drop_table(totals.table, schema=SCHEMA)
    op.execute(f"DROP FUNCTION {FORGET_FUNCTION}()")
