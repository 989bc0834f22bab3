"""Each run's totals (migration 0027), kept by statement triggers on the batch tables: they follow
whatever statement changes the batches, and an upgrade starts them from the stored batches."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from conftest import _create_database, _drop_database, gateway_settings

from services.gateway.db import connect, migrate
from services.gateway.projector.writer import STATS_COLUMNS
from services.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

# Each kept table beside the same totals summed from the batches, in key order.
TOTALS = {
    "run_totals": (
        "SELECT run_id, loans, to_purchase, projected, rejected, exceptions, present_fields, "
        "validity_420, unique_loans, rules_passed, dq_score FROM gateway.run_totals "
        "ORDER BY run_id",
        "SELECT run_id, sum(loans), sum(to_purchase), sum(projected), sum(rejected), "
        "sum(exceptions), sum(present_fields), sum(validity_420), sum(unique_loans), "
        "sum(rules_passed), sum(dq_score) FROM gateway.batch_stats GROUP BY run_id ORDER BY run_id",
    ),
    "run_stage_totals": (
        "SELECT run_id, stage, loans, first_recorded_at, last_recorded_at "
        "FROM gateway.run_stage_totals ORDER BY run_id, stage",
        "SELECT run_id, stage, sum(loan_count), min(recorded_at), max(recorded_at) "
        "FROM gateway.run_batches GROUP BY run_id, stage ORDER BY run_id, stage",
    ),
    "run_exception_totals": (
        "SELECT run_id, exception_type, severity, count FROM gateway.run_exception_totals "
        "ORDER BY run_id, exception_type, severity",
        "SELECT run_id, exception_type, severity, sum(count) FROM gateway.batch_exception_counts "
        "GROUP BY run_id, exception_type, severity ORDER BY run_id, exception_type, severity",
    ),
}

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def settings_for(url: str, tmp_path: Any) -> GatewaySettings:
    return gateway_settings(url, "127.0.0.1:1", "unused", tmp_path)


@pytest.fixture(scope="module")
async def migrated_url(fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    await migrate(settings_for(fresh_database_url, tmp_path_factory.mktemp("totals")))
    return fresh_database_url


@pytest.fixture
async def conn(
    migrated_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(settings_for(migrated_url, tmp_path_factory.mktemp("totals")))
    yield connection
    await connection.close()


async def kept_and_summed(conn: asyncpg.Connection, *run_ids: UUID) -> dict[str, tuple]:
    """Per kept table: its rows of these runs, and the same totals summed from the batches."""
    found = {}
    for table, (kept, summed) in TOTALS.items():
        rows = [
            [tuple(row) for row in await conn.fetch(query) if row[0] in run_ids]
            for query in (kept, summed)
        ]
        found[table] = tuple(rows)
    return found


async def assert_kept(conn: asyncpg.Connection, *run_ids: UUID) -> dict[str, list[tuple]]:
    found = await kept_and_summed(conn, *run_ids)
    for table, (kept, summed) in found.items():
        assert kept == summed, table
    return {table: kept for table, (kept, _) in found.items()}


def stats(run_id: UUID, batch_seq: int, loans: int, score: str = "97.50") -> tuple:
    return (
        run_id,
        batch_seq,
        loans,
        loans - 2,
        1,
        1,
        3,
        10 * loans,
        420 * loans,
        loans,
        9 * loans,
        Decimal(score),
    )


async def copy_batches(conn: asyncpg.Connection, *batches: tuple[UUID, int, int]) -> None:
    """The projector's writes of new batches: COPY for the stats and exception counts, an
    INSERT that skips batches already seen for the stage rows."""
    await conn.copy_records_to_table(
        "batch_stats",
        schema_name="gateway",
        columns=list(STATS_COLUMNS),
        records=[stats(run_id, seq, loans) for run_id, seq, loans in batches],
    )
    await conn.copy_records_to_table(
        "batch_exception_counts",
        schema_name="gateway",
        columns=["run_id", "batch_seq", "exception_type", "severity", "count"],
        records=[
            (run_id, seq, kind, "high", seq + 1)
            for run_id, seq, _ in batches
            for kind in ("missing_field", "ltv_limit")
        ],
    )
    await insert_stage_rows(
        conn, [(run_id, "ingested", seq, loans) for run_id, seq, loans in batches]
    )


async def insert_stage_rows(
    conn: asyncpg.Connection, rows: list[tuple[UUID, str, int, int]]
) -> None:
    await conn.execute(
        "INSERT INTO gateway.run_batches (run_id, stage, batch_seq, loan_count, recorded_at) "
        "SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::timestamptz[]) "
        "ON CONFLICT DO NOTHING",
        [row[0] for row in rows],
        [row[1] for row in rows],
        [row[2] for row in rows],
        [row[3] for row in rows],
        [T0 + timedelta(seconds=row[2]) for row in rows],
    )


async def test_a_runs_totals_follow_every_statement_on_its_batches(
    conn: asyncpg.Connection,
) -> None:
    first, second = sorted((uuid4(), uuid4()))
    # two runs' batches in one statement each, as the projector writes a chunk
    async with conn.transaction():
        await copy_batches(conn, (first, 1, 500), (second, 1, 500), (first, 2, 120))
    kept = await assert_kept(conn, first, second)
    assert kept["run_totals"][0][:3] == (first, 620, 616)
    assert kept["run_totals"][0][-1] == Decimal("195.00")
    assert kept["run_stage_totals"][0][2:] == (
        620,
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=2),
    )
    # a redelivered batch is skipped by the stage rows' insert: counted once
    await insert_stage_rows(conn, [(first, "ingested", 2, 120), (first, "evaluated", 2, 120)])
    kept = await assert_kept(conn, first, second)
    assert [row[1:3] for row in kept["run_stage_totals"] if row[0] == first] == [
        ("evaluated", 120),
        ("ingested", 620),
    ]
    # an update and a delete (never the projector's, but whoever runs them) count the runs again
    await conn.execute(
        "UPDATE gateway.batch_stats SET loans = 7, run_id = $2 WHERE run_id = $1 AND batch_seq = 2",
        first,
        second,
    )
    await conn.execute(
        "UPDATE gateway.run_batches SET recorded_at = $2 WHERE run_id = $1 AND batch_seq = 1",
        first,
        T0 - timedelta(days=1),
    )
    await conn.execute("DELETE FROM gateway.batch_exception_counts WHERE run_id = $1", second)
    kept = await assert_kept(conn, first, second)
    assert {row[0]: row[1] for row in kept["run_totals"]} == {first: 500, second: 507}
    assert [row[0] for row in kept["run_exception_totals"]] == [first, first]
    # a transaction that fails counts nothing
    with pytest.raises(asyncpg.UniqueViolationError):
        async with conn.transaction():
            await copy_batches(conn, (second, 9, 50))
            await copy_batches(conn, (second, 9, 50))
    assert await assert_kept(conn, first, second) == kept
    # a run's batches deleted: its totals go with them
    for table in ("batch_stats", "run_batches", "batch_exception_counts"):
        await conn.execute(f"DELETE FROM gateway.{table} WHERE run_id = $1", first)
    kept = await assert_kept(conn, first, second)
    assert all(row[0] == second for rows in kept.values() for row in rows)


async def test_an_upsert_or_a_merge_counts_each_row_it_changes_once(
    conn: asyncpg.Connection,
) -> None:
    """One statement firing the UPDATE (or DELETE) trigger and then the INSERT one."""
    run_id = uuid4()
    await copy_batches(conn, (run_id, 1, 10), (run_id, 2, 7))
    await conn.execute(
        "INSERT INTO gateway.run_batches (run_id, stage, batch_seq, loan_count, recorded_at) "
        "VALUES ($1, 'ingested', 1, 11, $2), ($1, 'ingested', 3, 100, $3) "
        "ON CONFLICT (run_id, stage, batch_seq) DO UPDATE SET loan_count = excluded.loan_count, "
        "recorded_at = excluded.recorded_at",
        run_id,
        T0 + timedelta(hours=1),
        T0 - timedelta(hours=1),
    )
    kept = await assert_kept(conn, run_id)
    assert kept["run_stage_totals"] == [
        (run_id, "ingested", 118, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    ]
    await conn.execute(
        "MERGE INTO gateway.batch_stats AS b USING (VALUES ($1::uuid, 1), ($1::uuid, 5)) "
        "AS s(run_id, batch_seq) ON b.run_id = s.run_id AND b.batch_seq = s.batch_seq "
        "WHEN MATCHED THEN DELETE "
        "WHEN NOT MATCHED THEN "
        "INSERT VALUES (s.run_id, s.batch_seq, 40, 40, 0, 0, 0, 0, 0, 0, 0, 1.5)",
        run_id,
    )
    kept = await assert_kept(conn, run_id)
    assert kept["run_totals"][0][1] == 47


@pytest.mark.parametrize(
    ("batches", "totals"),
    [
        ("batch_stats", "run_totals"),
        ("run_batches", "run_stage_totals"),
        ("batch_exception_counts", "run_exception_totals"),
    ],
)
async def test_a_truncate_of_a_batch_table_forgets_its_totals_only(
    conn: asyncpg.Connection, batches: str, totals: str
) -> None:
    run_id = uuid4()
    await copy_batches(conn, (run_id, 1, 10))
    assert all(rows for rows in (await assert_kept(conn, run_id)).values())
    await conn.execute(f"TRUNCATE gateway.{batches}")
    assert await conn.fetchval(f"SELECT count(*) FROM gateway.{totals}") == 0
    for table in TOTALS:
        if table != totals:
            assert await conn.fetchval(f"SELECT count(*) FROM gateway.{table}") > 0
    for table in ("batch_stats", "run_batches", "batch_exception_counts"):
        await conn.execute(f"TRUNCATE gateway.{table}")


async def test_upgrading_to_kept_run_totals_starts_them_from_the_stored_batches(
    database_url: str, tmp_path: Any
) -> None:
    url = await _create_database(database_url)
    settings = settings_for(url, tmp_path)
    try:
        await migrate(settings, "0026_review_overrides_index")
        run_id = uuid4()
        conn = await connect(settings)
        try:
            await copy_batches(conn, (run_id, 1, 500), (run_id, 2, 500), (run_id, 3, 1))
            await migrate(settings)
            kept = await assert_kept(conn, run_id)
            assert kept["run_totals"][0][1] == 1001
            await copy_batches(conn, (run_id, 4, 9))
            kept = await assert_kept(conn, run_id)
            assert kept["run_totals"][0][1] == 1010
        finally:
            await conn.close()
    finally:
        await _drop_database(database_url, url)
