"""COPY rows into a read model, falling back to an upsert only when a key already exists."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import asyncpg

from services.gateway.tables import SCHEMA


def _columns(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


async def _copy(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    records: Collection[tuple[Any, ...]],
) -> bool:
    """COPY the records in (inside a savepoint); False when a key already exists."""
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                table, schema_name=SCHEMA, columns=columns, records=records
            )
    except asyncpg.UniqueViolationError:
        return False
    return True


async def _stage(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], records: list[tuple[Any, ...]]
) -> str:
    staging = f"staging_{table}"
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} "
        f"(LIKE {SCHEMA}.{table} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    await conn.execute(f"TRUNCATE {staging}")
    await conn.copy_records_to_table(staging, columns=columns, records=records)
    return staging


def _by_key(
    columns: Sequence[str],
    key: tuple[str, ...],
    records: Collection[tuple[Any, ...]],
    *,
    last: bool,
) -> list[tuple[Any, ...]]:
    positions = [list(columns).index(name) for name in key]
    chosen: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for record in records:
        identity = tuple(record[i] for i in positions)
        if last or identity not in chosen:
            chosen[identity] = record
    return list(chosen.values())


async def copy_or_upsert(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    key: tuple[str, ...],
    records: Collection[tuple[Any, ...]],
) -> None:
    """COPY straight in; only if a row already exists (a loan re-sent in another batch), upsert.

    The upsert goes through a temporary staging table (COPY again, then one INSERT ... SELECT
    ... ON CONFLICT DO UPDATE), so even a redelivered chunk costs two COPYs and one statement,
    never a round trip per row. Of rows sharing a key within `records`, the last one wins (as
    it would row by row).
    """
    if not records or await _copy(conn, table, columns, records):
        return
    staging = await _stage(conn, table, columns, _by_key(columns, key, records, last=True))
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in key)
    await conn.execute(
        f"INSERT INTO {SCHEMA}.{table} ({_columns(columns)}) "
        f"SELECT {_columns(columns)} FROM {staging} "
        f"ON CONFLICT ({_columns(key)}) DO UPDATE SET {updates}"
    )


async def copy_or_ignore(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    key: tuple[str, ...],
    records: Collection[tuple[Any, ...]],
) -> None:
    """COPY straight in; if a key already exists, insert only the rows whose key is new.

    Of rows sharing a key within `records`, the first one wins (as it would row by row with
    ON CONFLICT DO NOTHING).
    """
    if not records or await _copy(conn, table, columns, records):
        return
    staging = await _stage(conn, table, columns, _by_key(columns, key, records, last=False))
    await conn.execute(
        f"INSERT INTO {SCHEMA}.{table} ({_columns(columns)}) "
        f"SELECT {_columns(columns)} FROM {staging} "
        f"ON CONFLICT ({_columns(key)}) DO NOTHING"
    )
