"""The review jobs as operators run them: `python -m services.gateway.review.main`, a process of
its own beside the API, over a real broker and database. It answers health and readiness on its
own port, opens the cases of a scored run (folded by a projector), and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from conftest import RunningProjector, gateway_settings
from test_gateway_processes import get, start, wait_for  # noqa: F401 - `start` is a fixture
from test_review_opening import human_reviews

from services.common.kafka import KafkaPublisher
from services.gateway.db import connect, migrate
from services.gateway.settings import GatewaySettings
from tests.net import free_port
from tests.unit.gateway.gateway_events import RunScenario
from tests.unit.gateway.review_events import scored_messages

pytestmark = pytest.mark.integration

CASES = "SELECT count(*) FROM gateway.review_cases WHERE run_id = $1"
SCORES = "SELECT count(*) FROM gateway.loan_scores WHERE run_id = $1"


@pytest.fixture(scope="module")
async def jobs_settings(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[GatewaySettings]:
    """A migrated database and topics of the module's own, a projector folding them."""
    settings = gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        module_topic_prefix,
        tmp_path_factory.mktemp("jobs-storage"),
    )
    await migrate(settings)
    projector = RunningProjector(settings)
    await projector.start()
    try:
        yield settings
    finally:
        await projector.stop()


def environment(settings: GatewaySettings, port: int) -> dict[str, str]:
    """What the jobs process is started with: the test's broker, database and topics."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_dsn,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "TOPIC_PREFIX": settings.topic_prefix,
        "STORAGE_ROOT": str(settings.storage_root),
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "GATEWAY_JWT_SECRET": "jobs-process-test-secret-long-enough-for-hs256",
        "GATEWAY_JOBS_HTTP_PORT": str(port),
        "GATEWAY_REVIEW_JOB_SECONDS": "0.5",
    }


async def count_until(
    conn: asyncpg.Connection, query: str, run: RunScenario, expected: int, timeout: float = 90
) -> int:
    """`query`'s count for the run once it reaches `expected` (or what it is at the timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = int(await conn.fetchval(query, run.run_id))
        if found == expected or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_the_jobs_process_is_ready_opens_the_cases_of_a_scored_run_and_stops_on_sigterm(
    jobs_settings: GatewaySettings,
    start,  # type: ignore[no-untyped-def]  # noqa: F811
    tmp_path: Path,
) -> None:
    port = free_port()
    jobs = start("services.gateway.review.main", environment(jobs_settings, port), "jobs")
    base = f"http://127.0.0.1:{port}"
    assert await asyncio.to_thread(wait_for, lambda: get(f"{base}/health/ready")[0] == 200)
    _, body = get(f"{base}/health/ready")
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"kafka", "database"}
    with urllib.request.urlopen(f"{base}/metrics", timeout=3) as response:
        assert response.url == f"{base}/metrics"  # answered there, not redirected
        metrics = response.read()
    assert b"loan_engine_process_cpu_seconds_total" in metrics

    run = RunScenario(loans=40, batch_size=20)
    expected = human_reviews(run)
    assert expected > 0
    async with KafkaPublisher(jobs_settings) as publisher:
        for topic, key, batch in scored_messages(run):
            await publisher.publish(topic, key, batch)
    conn = await connect(jobs_settings)
    try:
        assert await count_until(conn, SCORES, run, run.loans) == run.loans
        # Nobody else opens cases here: the process published them, the projector folded them.
        assert await count_until(conn, CASES, run, expected) == expected
    finally:
        await conn.close()

    jobs.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(jobs.wait, 30) == 0
    assert "review cases opened" in (tmp_path / "jobs.log").read_text()


async def test_the_jobs_process_says_its_database_is_down_and_still_answers_health(
    jobs_settings: GatewaySettings,
    start,  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    port = free_port()
    nowhere = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    jobs = start(
        "services.gateway.review.main",
        {**environment(jobs_settings, port), "DATABASE_URL": nowhere},
        "jobs-no-database",
    )
    base = f"http://127.0.0.1:{port}"
    assert await asyncio.to_thread(wait_for, lambda: get(f"{base}/health")[0] == 200)
    status, body = get(f"{base}/health/ready")
    assert status == 503
    assert body["failing"] == ["database"]
    assert jobs.poll() is None  # its ticks fail and are retried; the process keeps going
    jobs.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(jobs.wait, 30) == 0
