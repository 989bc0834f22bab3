"""The review jobs as operators run them: `python -m services.gateway.review.main`, a process of
its own beside the API, over a real broker and database. It answers health and readiness on its
own port, opens the cases of a scored run (folded by a projector), and stops on SIGTERM, promptly
even while a team webhook's receiver never answers (the delivery stays pending for the next
start)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import urllib.request
import uuid
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
# Well under a supervisor's 15 s stop timeout, and under the webhook timeout the test sets (60 s):
# a process that waited for the receiver would overrun it.
STOP_SECONDS = 10


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


class SilentReceiver:
    """A team's webhook endpoint on a loopback port that reads each POST whole and, until told
    to answer, never replies (a hung receiver); then it answers 200."""

    def __init__(self) -> None:
        self.answering = False
        self.bodies: list[dict[str, str]] = []
        self.arrived = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
                assert length is not None
                self.bodies.append(json.loads(await reader.readexactly(int(length.group(1)))))
                self.arrived.set()
                if not self.answering:
                    await reader.read()  # until the client goes away
                    return
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


async def team_notification(conn: asyncpg.Connection, url: str) -> uuid.UUID:
    """A team of its own with its webhook at `url`, and one notification of it raised after the
    webhook was set; its notification id."""
    team = f"hooked-{uuid.uuid4().hex[:8]}"
    await conn.execute("INSERT INTO gateway.teams (id, name) VALUES ($1, $1)", team)
    await conn.execute(
        "INSERT INTO gateway.team_webhooks (team_id, url, secret, created_at, updated_at) "
        "VALUES ($1, $2, 'a-webhook-secret-of-the-test-team', now() - interval '1 minute', now())",
        team,
        url,
    )
    notification = uuid.uuid4()
    await conn.execute(
        "INSERT INTO gateway.notifications (notification_id, kind, severity, title, message, "
        "subject_id, team_id, recipients, occurred_at) VALUES "
        "($1, 'run_completed', 'info', 'Run completed', 'A run completed', $2, $3, '{}', now())",
        notification,
        uuid.uuid4(),
        team,
    )
    return notification


async def delivery_of(conn: asyncpg.Connection, notification: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT d.*, d.next_attempt_at <= now() AS due, "
        "(SELECT count(*) FROM gateway.webhook_attempts a WHERE a.delivery_id = d.delivery_id) "
        "AS tries FROM gateway.webhook_deliveries d WHERE d.notification_id = $1",
        notification,
    )


async def test_sigterm_stops_the_jobs_process_promptly_while_a_receiver_never_answers(
    jobs_settings: GatewaySettings,
    start,  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    receiver = SilentReceiver()
    url = await receiver.start()
    conn = await connect(jobs_settings)
    try:
        notification = await team_notification(conn, url)
        # A hung receiver holds a POST for the whole webhook timeout: longer than any stop.
        hung = {**environment(jobs_settings, free_port()), "GATEWAY_WEBHOOK_TIMEOUT_SECONDS": "60"}
        jobs = start("services.gateway.review.main", hung, "jobs-hung-receiver")
        await asyncio.wait_for(receiver.arrived.wait(), 90)
        in_flight = await delivery_of(conn, notification)
        assert in_flight is not None
        assert (in_flight["state"], in_flight["attempts"], in_flight["due"]) == (
            "pending",
            0,
            False,  # leased to the process while it tries
        )

        jobs.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(jobs.wait, STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the jobs process did not stop within {STOP_SECONDS} s of SIGTERM")
        assert code == 0
        # Abandoned, not failed: still pending, due at once, no try counted or logged.
        abandoned = await delivery_of(conn, notification)
        assert abandoned is not None
        assert (abandoned["state"], abandoned["attempts"], abandoned["tries"]) == ("pending", 0, 0)
        assert abandoned["due"] is True

        receiver.answering = True
        restarted = start(
            "services.gateway.review.main",
            {**hung, "GATEWAY_JOBS_HTTP_PORT": str(free_port())},
            "jobs-restarted",
        )
        deadline = asyncio.get_running_loop().time() + 90
        while (delivered := await delivery_of(conn, notification)) is not None and (
            delivered["state"] == "pending" and asyncio.get_running_loop().time() < deadline
        ):
            await asyncio.sleep(0.2)
        assert delivered is not None
        assert (delivered["state"], delivered["attempts"], delivered["tries"]) == (
            "delivered",
            1,
            1,
        )
        restarted.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(restarted.wait, 30) == 0
    finally:
        await conn.close()
        receiver.close()
    # The same delivery both times: the abandoned POST, then the one answered.
    assert [body["delivery_id"] for body in receiver.bodies] == [str(delivered["delivery_id"])] * 2
    assert {body["notification_id"] for body in receiver.bodies} == {str(notification)}
