"""Transaction conflicts through a real PostgreSQL: a deadlock and a serialization failure, as
asyncpg and as SQLAlchemy raise them, are transient (the transaction was rolled back; the same
work tried again succeeds), so a worker retries them instead of dead-lettering a good message,
and work retried after losing a deadlock is done once, nothing lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.common.consumer import RetryPolicy, is_transient, retry_transient

pytestmark = pytest.mark.integration

# The victim looks for a deadlock after 100 ms, the other side only after 30 s: PostgreSQL
# always aborts the victim, and the other side goes on once it has.
VICTIM_TIMEOUT = "SET deadlock_timeout = '100ms'"
SURVIVOR_TIMEOUT = "SET deadlock_timeout = '30s'"


def plain_dsn(url: str) -> str:
    """The SQLAlchemy asyncpg URL as asyncpg's own DSN."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def table(database_url: str) -> AsyncIterator[str]:
    """A table of this test's own holding rows 1 and 2 (value 0), dropped at the end."""
    name = f"conflicts_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        await conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, value int NOT NULL)")
        await conn.execute(f"INSERT INTO {name} VALUES (1, 0), (2, 0)")
        yield name
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.close()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


class Survivor:
    """The side of a deadlock PostgreSQL lets go on: it holds row 2, then waits for row 1, and
    gets it (and commits its increments of both) once PostgreSQL has aborted the victim."""

    def __init__(self, database_url: str, table: str) -> None:
        self.database_url = database_url
        self.table = table
        self.holds_2 = asyncio.Event()
        self.victim_holds_1 = asyncio.Event()
        self.pid: int | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        conn = await asyncpg.connect(plain_dsn(self.database_url))
        try:
            self.pid = conn.get_server_pid()
            await conn.execute(SURVIVOR_TIMEOUT)
            async with conn.transaction():
                await conn.execute(f"UPDATE {self.table} SET value = value + 1 WHERE id = 2")
                self.holds_2.set()
                await self.victim_holds_1.wait()
                await conn.execute(f"UPDATE {self.table} SET value = value + 1 WHERE id = 1")
        finally:
            await conn.close()

    async def blocked(self) -> None:
        """Once the survivor waits for the victim's lock on row 1: the victim's next lock closes
        the cycle, and its deadlock check (the first to run) finds it."""
        conn = await asyncpg.connect(plain_dsn(self.database_url))
        try:
            while not await conn.fetchval(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", self.pid
            ):
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    async def done(self) -> None:
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)


async def deadlock(
    database_url: str, table: str, victim: Callable[[Survivor], Awaitable[None]]
) -> BaseException:
    """What `victim(survivor)` raises when it locks row 1, then (once `survivor.blocked()`)
    row 2, while the survivor locks row 2, then row 1: a genuine deadlock PostgreSQL breaks."""
    survivor = Survivor(database_url, table)
    survivor.start()
    try:
        async with asyncio.timeout(30):
            await victim(survivor)
    except Exception as error:
        raised: BaseException = error
    else:
        raise AssertionError("no deadlock")
    await survivor.done()
    return raised


async def values(database_url: str, table: str) -> dict[int, int]:
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        return {row["id"]: row["value"] for row in await conn.fetch(f"SELECT * FROM {table}")}
    finally:
        await conn.close()


async def test_a_real_deadlock_raised_by_asyncpg_is_transient(
    database_url: str, table: str
) -> None:
    async def victim(survivor: Survivor) -> None:
        conn = await asyncpg.connect(plain_dsn(database_url))
        try:
            await conn.execute(VICTIM_TIMEOUT)
            async with conn.transaction():
                await survivor.holds_2.wait()
                await conn.execute(f"UPDATE {table} SET value = value + 10 WHERE id = 1")
                survivor.victim_holds_1.set()
                await survivor.blocked()
                await conn.execute(f"UPDATE {table} SET value = value + 10 WHERE id = 2")
        finally:
            await conn.close()

    error = await deadlock(database_url, table, victim)
    assert isinstance(error, asyncpg.exceptions.DeadlockDetectedError)
    assert is_transient(error)
    assert await values(database_url, table) == {1: 1, 2: 1}  # the victim's work rolled back


async def test_a_real_deadlock_raised_through_sqlalchemy_is_transient(
    database_url: str, table: str, engine: AsyncEngine
) -> None:
    async def victim(survivor: Survivor) -> None:
        async with engine.connect() as conn:
            await conn.execute(text(VICTIM_TIMEOUT))
            await survivor.holds_2.wait()
            await conn.execute(text(f"UPDATE {table} SET value = value + 10 WHERE id = 1"))
            survivor.victim_holds_1.set()
            await survivor.blocked()
            await conn.execute(text(f"UPDATE {table} SET value = value + 10 WHERE id = 2"))
            await conn.commit()

    error = await deadlock(database_url, table, victim)
    # The asyncpg dialect wraps it as a plain DBAPIError: only the SQLSTATE says what it is.
    assert isinstance(error, DBAPIError)
    assert getattr(error.orig, "sqlstate", None) == "40P01"
    assert is_transient(error)
    assert await values(database_url, table) == {1: 1, 2: 1}


async def test_a_real_serialization_failure_raised_through_sqlalchemy_is_transient(
    database_url: str, table: str, engine: AsyncEngine
) -> None:
    async with engine.connect() as reader:
        await reader.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        await reader.execute(text(f"SELECT value FROM {table} WHERE id = 1"))  # the snapshot
        async with engine.connect() as writer:
            await writer.execute(text(f"UPDATE {table} SET value = 5 WHERE id = 1"))
            await writer.commit()
        with pytest.raises(DBAPIError) as raised:
            await reader.execute(text(f"UPDATE {table} SET value = value + 1 WHERE id = 1"))
    assert getattr(raised.value.orig, "sqlstate", None) == "40001"
    assert is_transient(raised.value)
    assert await values(database_url, table) == {1: 5, 2: 0}


async def test_work_that_loses_a_deadlock_is_retried_and_done_once(
    database_url: str, table: str, engine: AsyncEngine
) -> None:
    survivor = Survivor(database_url, table)
    attempts: list[int] = []
    retried: list[BaseException] = []

    async def operation() -> None:
        attempts.append(len(attempts) + 1)
        async with engine.connect() as conn:
            await conn.execute(text(VICTIM_TIMEOUT))
            await conn.execute(text(f"UPDATE {table} SET value = value + 10 WHERE id = 1"))
            if len(attempts) == 1:  # the first attempt meets the survivor: a deadlock
                survivor.victim_holds_1.set()
                await survivor.blocked()
            await conn.execute(text(f"UPDATE {table} SET value = value + 10 WHERE id = 2"))
            await conn.commit()

    survivor.start()
    await survivor.holds_2.wait()
    await asyncio.wait_for(
        retry_transient(
            operation,
            RetryPolicy(transient_attempts=3, base_seconds=0.05),
            on_retry=lambda _attempt, error: retried.append(error),
        ),
        30,
    )
    await survivor.done()
    assert attempts == [1, 2]
    assert [getattr(getattr(error, "orig", None), "sqlstate", None) for error in retried] == [
        "40P01"
    ]
    # The survivor's increments and the retried transfer's, each once.
    assert await values(database_url, table) == {1: 11, 2: 11}
