"""The projector process's loop (`projector.main.project`) over a real broker and database, when
PostgreSQL aborts its chunk to break a deadlock with a reader: the chunk was rolled back with its
positions, so the projector reconnects and writes it again; nothing is lost or counted twice, and
the process goes on instead of exiting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest
from conftest import gateway_settings, publish_runs

from services.gateway.db import connect, migrate
from services.gateway.projector.main import project
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.gateway_events import RunScenario

pytestmark = pytest.mark.integration

STATUS = "SELECT status FROM gateway.runs WHERE run_id = $1"
FACTS = "SELECT count(*) FROM gateway.loan_facts WHERE run_id = $1"
# The projector's chunk waiting for a table lock the reader holds.
PROJECTOR_WAITS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND application_name LIKE '%-projector' AND wait_event_type = 'Lock' "
    "AND wait_event = 'relation'"
)


@pytest.fixture(scope="module")
async def settings(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[GatewaySettings]:
    """A migrated database of the module's own whose sessions look for a deadlock after 5 s (the
    reader closes the cycle well within), and topics of the module's own."""
    settings = gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        module_topic_prefix,
        tmp_path_factory.mktemp("deadlock-storage"),
    )
    await migrate(settings)
    conn = await connect(settings)
    try:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f"ALTER DATABASE \"{name}\" SET deadlock_timeout = '5s'")
    finally:
        await conn.close()
    yield settings


async def until(
    conn: asyncpg.Connection,
    query: str,
    arg: object,
    expected: object,
    projecting: asyncio.Task[None],
) -> object:
    """`query`'s value once it is `expected` (or what it is after 90 s); whatever ended the
    projector's loop meanwhile is raised."""
    deadline = asyncio.get_running_loop().time() + 90
    while True:
        if projecting.done():
            projecting.result()
            raise AssertionError("the projector stopped by itself")
        found = await conn.fetchval(query, arg) if arg is not None else await conn.fetchval(query)
        if found == expected or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def test_a_projector_chunk_aborted_by_a_deadlock_is_written_again_after_a_reconnect(
    settings: GatewaySettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="services.gateway.projector.main")
    stop = asyncio.Event()
    projecting = asyncio.create_task(project(settings, stop))
    first, second = RunScenario(loans=8, batch_size=4), RunScenario(loans=12, batch_size=4)
    conn = await connect(settings)
    reader = await connect(settings)
    try:
        await publish_runs(settings, [first])
        assert await until(conn, STATUS, first.run_id, "completed", projecting) == "completed"

        # The reader holds the positions table (every chunk writes its positions last) ...
        await reader.execute("SET deadlock_timeout = '30s'")  # the projector is the victim
        transaction = reader.transaction()
        await transaction.start()
        await reader.execute("LOCK TABLE gateway.projector_positions IN SHARE MODE")
        await publish_runs(settings, [second])
        # ... the projector's chunk, holding the state row (FOR SHARE), waits for it ...
        assert await until(conn, PROJECTOR_WAITS, None, 1, projecting) == 1
        # ... and the reader asks for the state row: a cycle PostgreSQL breaks by aborting the
        # chunk, after which the reader has its lock.
        await asyncio.wait_for(
            reader.execute("SELECT 1 FROM gateway.projector_state WHERE id = 1 FOR UPDATE"), 30
        )
        await transaction.commit()

        assert await until(conn, STATUS, second.run_id, "completed", projecting) == "completed"
        assert not projecting.done()  # it reconnected instead of exiting
        assert await conn.fetchval(FACTS, first.run_id) == first.loans
        assert await conn.fetchval(FACTS, second.run_id) == second.loans
    finally:
        stop.set()
        if not projecting.done():  # if it is, `until` raised what ended it
            await asyncio.wait_for(projecting, 60)
        await reader.close()
        await conn.close()
    retries = [r for r in caplog.records if r.getMessage().startswith("projector lost a dep")]
    assert retries and "DeadlockDetectedError" in str(retries[0].__dict__.get("error"))
