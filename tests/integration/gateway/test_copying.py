"""The projector's COPY writers: straight COPY when every key is new, and when one is not, the
same rows as row-by-row `ON CONFLICT DO NOTHING` (first wins) or `DO UPDATE` (last wins)."""

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from conftest import gateway_settings

from services.gateway.db import connect
from services.gateway.projector.copying import copy_or_ignore, copy_or_upsert
from services.gateway.tables import SCHEMA

pytestmark = pytest.mark.integration

COLUMNS = ("key", "value")


@pytest.fixture
async def conn(
    fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[asyncpg.Connection]:
    settings = gateway_settings(
        fresh_database_url, "127.0.0.1:1", "unused", tmp_path_factory.mktemp("copying")
    )
    connection = await connect(settings)
    await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    await connection.execute(f"DROP TABLE IF EXISTS {SCHEMA}.copy_probe")
    await connection.execute(f"CREATE TABLE {SCHEMA}.copy_probe (key int PRIMARY KEY, value text)")
    yield connection
    await connection.execute(f"DROP TABLE {SCHEMA}.copy_probe")
    await connection.close()


async def stored(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in await conn.fetch(f"SELECT * FROM {SCHEMA}.copy_probe ORDER BY 1")]


async def test_copy_or_ignore_adds_new_keys_and_keeps_stored_rows_and_the_first_of_a_key(
    conn: asyncpg.Connection,
) -> None:
    async with conn.transaction():
        await copy_or_ignore(conn, "copy_probe", COLUMNS, ("key",), [(1, "a"), (2, "b")])
        assert await stored(conn) == [(1, "a"), (2, "b")]
        await copy_or_ignore(
            conn, "copy_probe", COLUMNS, ("key",), [(2, "stale"), (3, "c"), (3, "later")]
        )
    assert await stored(conn) == [(1, "a"), (2, "b"), (3, "c")]


async def test_copy_or_upsert_adds_new_keys_and_replaces_stored_rows_with_the_last_of_a_key(
    conn: asyncpg.Connection,
) -> None:
    async with conn.transaction():
        await copy_or_upsert(conn, "copy_probe", COLUMNS, ("key",), [(1, "a"), (2, "b")])
        await copy_or_upsert(
            conn, "copy_probe", COLUMNS, ("key",), [(2, "new"), (3, "c"), (3, "later")]
        )
    assert await stored(conn) == [(1, "a"), (2, "new"), (3, "later")]


async def test_a_conflicting_copy_leaves_the_transaction_usable_and_nothing_half_written(
    conn: asyncpg.Connection,
) -> None:
    async with conn.transaction():
        await copy_or_ignore(conn, "copy_probe", COLUMNS, ("key",), [(1, "a")])
        await copy_or_ignore(conn, "copy_probe", COLUMNS, ("key",), [(4, "d"), (1, "again")])
        await conn.execute(f"INSERT INTO {SCHEMA}.copy_probe VALUES (5, 'e')")
    assert await stored(conn) == [(1, "a"), (4, "d"), (5, "e")]
