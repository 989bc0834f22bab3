"""COPY rows into a read model, falling back to an upsert only when a key already exists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from services.gateway.tables import SCHEMA


def _columns(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


async def copy_or_upsert(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    key: tuple[str, ...],
    records: list[tuple[Any, ...]],
) -> None:
    """COPY straight in; only if a row already exists (a loan re-sent in another batch), upsert.

    The upsert goes through a temporary staging table (COPY again, then one INSERT ... SELECT
    ... ON CONFLICT DO UPDATE), so even a redelivered chunk costs two COPYs and one statement,
    never a round trip per row. Of rows sharing a key within `records`, the last one wins (as
    it would row by row).
    """
    if not records:
        return
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                table, schema_name=SCHEMA, columns=columns, records=records
            )
        return
    except asyncpg.UniqueViolationError:
        pass
    staging = f"staging_{table}"
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} "
        f"(LIKE {SCHEMA}.{table} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    await conn.execute(f"TRUNCATE {staging}")
    positions = [list(columns).index(name) for name in key]
    latest = {tuple(record[i] for i in positions): record for record in records}
    await conn.copy_records_to_table(staging, columns=columns, records=list(latest.values()))
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in key)
    await conn.execute(
        f"INSERT INTO {SCHEMA}.{table} ({_columns(columns)}) "
        f"SELECT {_columns(columns)} FROM {staging} "
        f"ON CONFLICT ({_columns(key)}) DO UPDATE SET {updates}"
    )
