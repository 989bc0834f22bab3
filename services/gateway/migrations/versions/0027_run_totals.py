"""each run's totals are kept as its batches are projected, not summed again on every request

A run's summary summed its batches' statistics and exception counts, and its progress its
batches per stage, on every request: at a million loans (2,000 batches, 8,000 stage rows,
16,000 exception-count rows) that was 12 ms of PostgreSQL per summary and 4 ms per progress,
growing with the run, and the slowest answers of the API under load. Three tables hold the
totals per run (and stage, and exception type and severity). Statement triggers on the batch
tables keep them from the rows each statement inserted (their transition tables), in the
statement's own transaction. A statement that updates or deletes batch rows (the projector never
does) moves the sums by the difference and reads a touched key's first and last batch times
again, so an upsert or a MERGE, which fires two triggers, counts each row once. A TRUNCATE forgets
the totals. The totals start from the stored batches.

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


MERGES = {
    "sum": "kept.{column} + excluded.{column}",
    "min": "least(kept.{column}, excluded.{column})",
    "max": "greatest(kept.{column}, excluded.{column})",
}


@dataclass(frozen=True)
class Totals:
    """A table of per-run totals of a batch table, grouped by `keys`: each column is the sum,
    min or max of a column of the batch rows."""

    table: str
    source: str
    keys: tuple[str, ...]
    columns: dict[str, tuple[str, str]]  # total: (kind, batch column)

    @property
    def function(self) -> str:
        return f"{SCHEMA}.keep_{self.table}"

    def _insert(self, select: str, merge: bool = True) -> str:
        keys = ", ".join(self.keys)
        into = f"INSERT INTO {SCHEMA}.{self.table} AS kept ({keys}, {', '.join(self.columns)}) "
        if not merge:
            return into + select
        updates = ", ".join(
            f"{column} = " + MERGES[kind].format(column=column)
            for column, (kind, _) in self.columns.items()
        )
        return into + select + f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"

    def _aggregate(self, rows: str, sources: list[str] | None = None) -> str:
        keys = ", ".join(self.keys)
        kinds = [kind for kind, _ in self.columns.values()]
        sources = sources or [source for _, source in self.columns.values()]
        aggregates = ", ".join(
            f"{kind}({source})" for kind, source in zip(kinds, sources, strict=True)
        )
        return f"SELECT {keys}, {aggregates} FROM {rows} GROUP BY {keys} ORDER BY {keys}"

    def count_all(self) -> str:
        """The totals of every stored batch (the upgrade's start)."""
        return self._insert(self._aggregate(f"{SCHEMA}.{self.source}"), merge=False)

    def add(self, rows: str) -> str:
        """Add the batch rows `rows` to the totals."""
        return self._insert(self._aggregate(rows))

    def change(self, new_rows: str | None) -> list[str]:
        """Replace the rows `old_rows` by `new_rows` (none for a delete): sums move by the
        difference; a min or max of a touched key, and whether the key has rows left, are read
        again from the batch table."""
        keys = ", ".join(self.keys)
        values = [f"value_{index}" for index in range(len(self.columns))]
        negated = ", ".join(
            f"{'-' if kind == 'sum' else ''}{source} AS {value}"
            for (kind, source), value in zip(self.columns.values(), values, strict=True)
        )
        plain = ", ".join(
            f"{source} AS {value}"
            for (_, source), value in zip(self.columns.values(), values, strict=True)
        )
        changed = f"SELECT {keys}, {negated} FROM old_rows"
        if new_rows is not None:
            changed = f"SELECT {keys}, {plain} FROM {new_rows} UNION ALL {changed}"
        statements = [self._insert(self._aggregate(f"({changed}) AS changed", values))]
        touched = f"({keys}) IN (SELECT {keys} FROM old_rows)"
        same_key = " AND ".join(f"b.{key} = kept.{key}" for key in self.keys)
        extremes = {c: spec for c, spec in self.columns.items() if spec[0] != "sum"}
        if extremes:
            assignments = ", ".join(
                f"{column} = (SELECT {kind}(b.{source}) FROM {SCHEMA}.{self.source} b "
                f"WHERE {same_key})"
                for column, (kind, source) in extremes.items()
            )
            statements.append(
                f"UPDATE {SCHEMA}.{self.table} AS kept SET {assignments} WHERE {touched} "
                f"AND EXISTS (SELECT 1 FROM {SCHEMA}.{self.source} b WHERE {same_key})"
            )
        statements.append(
            f"DELETE FROM {SCHEMA}.{self.table} AS kept WHERE {touched} "
            f"AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.{self.source} b WHERE {same_key})"
        )
        return statements

    def keep_function(self) -> str:
        # Each branch reads only the transition tables its operation has (PL/pgSQL plans a
        # statement when it first runs it). Every branch changes the totals by its own rows
        # only: an upsert or a MERGE fires the UPDATE or DELETE trigger and then the INSERT one
        # in the same statement, and each counts its own share once. Totals rows are written in
        # key order, so two transactions touching the same runs lock them in the same order.
        def body(statements: list[str]) -> str:
            return "".join(f"\n        {statement};" for statement in statements)

        return f"""
CREATE FUNCTION {self.function}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN{body([self.add("new_rows")])}
    ELSIF TG_OP = 'DELETE' THEN{body(self.change(None))}
    ELSE{body(self.change("new_rows"))}
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


TOTALS = (
    Totals(
        "run_totals",
        "batch_stats",
        ("run_id",),
        {column: ("sum", column) for column in (*STATS, "dq_score")},
    ),
    Totals(
        "run_stage_totals",
        "run_batches",
        ("run_id", "stage"),
        {
            "loans": ("sum", "loan_count"),
            "first_recorded_at": ("min", "recorded_at"),
            "last_recorded_at": ("max", "recorded_at"),
        },
    ),
    Totals(
        "run_exception_totals",
        "batch_exception_counts",
        ("run_id", "exception_type", "severity"),
        {"count": ("sum", "count")},
    ),
)

FORGET_FUNCTION = "gateway.forget_run_totals"
LOCK_ORDER = tuple(
    f"{SCHEMA}.{name}" for name in ("run_batches", "batch_stats", "batch_exception_counts")
)


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
    # The batches stay as they are until the upgrade commits. One statement takes the three
    # tables in the order a projector chunk writes them: locking them one by one, in another
    # order, deadlocked with a chunk in flight.
    op.execute(f"LOCK TABLE {', '.join(LOCK_ORDER)} IN SHARE ROW EXCLUSIVE MODE")
    for totals in TOTALS:
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
        op.execute(totals.count_all())


def downgrade() -> None:
    for totals in reversed(TOTALS):
        op.execute(f"DROP TRIGGER {totals.source}_forget_totals ON {SCHEMA}.{totals.source}")
        for name in totals.triggers():
            op.execute(f"DROP TRIGGER {name} ON {SCHEMA}.{totals.source}")
        op.execute(f"DROP FUNCTION {totals.function}()")
        op.drop_table(totals.table, schema=SCHEMA)
    op.execute(f"DROP FUNCTION {FORGET_FUNCTION}()")
