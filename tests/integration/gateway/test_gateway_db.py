"""The API's connection pool: a connection is pinged only after sitting idle, and one that died
meanwhile is replaced before a request sees it."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.gateway.db import asyncpg_dsn, ping_when_idle

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=0.3)
    yield engine
    await engine.dispose()


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_killed_while_idle_is_replaced_before_a_request_uses_it(
    engine: AsyncEngine, database_url: str
) -> None:
    first = await backend_pid(engine)
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await admin.close()
    await asyncio.sleep(0.5)
    second = await backend_pid(engine)
    assert second != first


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the driver's pings (one entry each)."""
    counted: list[int] = []
    original = AsyncAdapt_asyncpg_connection.ping

    def ping(self: AsyncAdapt_asyncpg_connection) -> None:
        counted.append(1)
        original(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", ping)
    return counted


async def test_a_connection_in_steady_use_is_not_pinged(
    engine: AsyncEngine, pings: list[int]
) -> None:
    first = await backend_pid(engine)
    for _ in range(5):
        assert await backend_pid(engine) == first
    assert pings == []


async def test_a_connection_left_idle_is_pinged_and_kept_when_it_answers(
    engine: AsyncEngine, pings: list[int]
) -> None:
    first = await backend_pid(engine)
    await asyncio.sleep(0.5)
    assert await backend_pid(engine) == first
    assert pings == [1]
