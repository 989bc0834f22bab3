"""A run's lookups take the index, whatever the planner guesses of the run's size.

PostgreSQL's statistics know a run as a share of the table, and for `LIMIT 1` without an order a
sequential scan then looks cheapest: it reads every earlier run's loans before the first of a run
appended after them (1.1 s for a lookup under a million-loan run).
"""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from services.gateway.db import connect, migrate
from services.gateway.dq.rules_total import rule_set_version_of_run
from services.gateway.settings import GatewaySettings
from tests.integration.gateway.conftest import gateway_settings, project_scenarios
from tests.unit.gateway.gateway_events import RunScenario

pytestmark = pytest.mark.integration

EARLIER = RunScenario(loans=10_000, batch_size=500)
APPENDED = RunScenario(loans=10_000, batch_size=500)


@pytest.fixture(scope="module")
async def plans_settings(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewaySettings:
    """A database of this module's own: a run, then one appended after it, both analysed (the
    statistics then know the appended run as half the table)."""
    storage = tmp_path_factory.mktemp("plans-storage")
    settings = gateway_settings(fresh_database_url, kafka_bootstrap_servers, topic_prefix, storage)
    await migrate(settings)
    await project_scenarios(settings, [EARLIER])
    await project_scenarios(settings, [APPENDED])
    conn = await connect(settings)
    try:
        await conn.execute("ANALYZE gateway.loan_facts")
    finally:
        await conn.close()
    return settings


@pytest.fixture
async def engine(plans_settings: GatewaySettings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(plans_settings.database_dsn)
    yield engine
    await engine.dispose()


async def test_a_runs_rule_set_version_is_read_from_its_first_loan_by_the_index(
    engine: AsyncEngine, plans_settings: GatewaySettings
) -> None:
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    async with AsyncSession(engine) as session:
        version = await rule_set_version_of_run(session, APPENDED.run_id)
    [(statement, parameters)] = sent
    conn = await connect(plans_settings)
    try:
        expected = await conn.fetchval(
            "SELECT rule_set_version FROM gateway.loan_facts WHERE run_id = $1 AND seq = 1",
            APPENDED.run_id,
        )
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {statement}", *parameters))
    finally:
        await conn.close()
    assert version == expected
    assert "Index Scan using loan_facts_pkey" in plan, plan
    assert "Seq Scan" not in plan, plan
