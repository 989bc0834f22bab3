"""The secondary indexes of the two bulk read models, dropped while a replay loads them.

PostgreSQL maintaining eight secondary indexes row by row was most of a replay's database time;
building them once from the loaded tables is several times cheaper. A projector replaying a large
log from nothing drops them, and builds them again as soon as it has caught up with the end the
log had when it began (`consumer.Projector`). A projector that starts builds any that are missing,
so a replay cut short (a crash, kill -9) heals at the next start.

The definitions are PostgreSQL's own (`pg_indexes.indexdef`); a test fails when the migrations add,
drop or change one of these indexes and this list does not follow.
"""

from __future__ import annotations

import asyncpg

from services.gateway.tables import SCHEMA

BULK_TABLES = ("loan_facts", "loan_exceptions")

SECONDARY_INDEXES: dict[str, str] = {
    "loan_facts_run_disposition_seq": (
        f"ON {SCHEMA}.loan_facts USING btree (run_id, disposition, seq)"
    ),
    "loan_facts_loan_id": f"ON {SCHEMA}.loan_facts USING btree (loan_id)",
    "loan_exceptions_exception_id": f"ON {SCHEMA}.loan_exceptions USING btree (exception_id)",
    "loan_exceptions_loan": f"ON {SCHEMA}.loan_exceptions USING btree (loan_id)",
    "loan_exceptions_newest": (
        f"ON {SCHEMA}.loan_exceptions USING btree (run_order, run_id, seq, ordinal)"
    ),
    "loan_exceptions_type_newest": (
        f"ON {SCHEMA}.loan_exceptions USING btree (exception_type, run_order, run_id, seq, ordinal)"
    ),
    "loan_exceptions_team_newest": (
        f"ON {SCHEMA}.loan_exceptions USING btree (sales_team_id, run_order, run_id, seq, ordinal)"
    ),
    "loan_exceptions_run_type": (
        f"ON {SCHEMA}.loan_exceptions USING btree (run_id, exception_type, seq, ordinal)"
    ),
}
"""Index name to the part of its definition after `CREATE INDEX name`."""

# Building an index sorts its table: give the sort room (a session setting, for these builds only).
BUILD_MEMORY = "256MB"


async def present(conn: asyncpg.Connection) -> set[str]:
    """Names of the secondary indexes that exist now."""
    rows = await conn.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND indexname = ANY($2::text[])",
        SCHEMA,
        list(SECONDARY_INDEXES),
    )
    return {row["indexname"] for row in rows}


async def drop(conn: asyncpg.Connection) -> None:
    """Drop every secondary index of the bulk tables (one transaction)."""
    async with conn.transaction():
        for name in SECONDARY_INDEXES:
            await conn.execute(f"DROP INDEX IF EXISTS {SCHEMA}.{name}")


async def build_missing(conn: asyncpg.Connection) -> list[str]:
    """Build the secondary indexes that do not exist (one transaction); return their names."""
    missing = [name for name in SECONDARY_INDEXES if name not in await present(conn)]
    if not missing:
        return []
    async with conn.transaction():
        await conn.execute(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'")
        for name in missing:
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {name} {SECONDARY_INDEXES[name]}")
    return missing
