"""The gateway under test: a migrated database, the app over HTTP, users of every role, and a
small world of runs projected the way the projector writes them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from contracts.codec import loads
from contracts.topics import RUNS
from services.common.kafka import KafkaPublisher
from services.common.storage import LocalStorage
from services.gateway.app import create_app
from services.gateway.db import asyncpg_dsn, connect, migrate
from services.gateway.identity import service
from services.gateway.projector.consumer import Projector
from services.gateway.projector.plan import plan
from services.gateway.projector.writer import replaying, write_chunk
from services.gateway.settings import GatewaySettings
from tests.conftest import run_async
from tests.unit.gateway.gateway_events import CREATED_AT, REPORT_KEYS, RunScenario, headers_of

PASSWORD = "correct horse battery"


def gateway_settings(
    database_url: str, kafka: str, prefix: str, storage_root: Path, **overrides: object
) -> GatewaySettings:
    """Settings pointing at the test infrastructure (explicit values beat the environment)."""
    values: dict[str, object] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": kafka,
        "topic_prefix": prefix,
        "storage_type": "local",
        "storage_root": storage_root,
        "environment": "test",
        "jwt_secret": "test-secret-key-with-enough-length-for-hs256",
        "admin_username": "root",
        "admin_password": PASSWORD,
        "admin_email": "root@example.com",
        "upload_max_bytes": 64 * 1024,
        "run_wait_poll_seconds": 0.1,
        "projector_poll_ms": 100,
    }
    values.update(overrides)
    return GatewaySettings(**values)  # type: ignore[arg-type]


async def _create_database(server_url: str) -> str:
    name = f"test_gw_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


async def _drop_database(server_url: str, url: str) -> None:
    name = url.rpartition("/")[2]
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def fresh_database_url(database_url: str) -> Iterator[str]:
    """A database of its own for one test module (the projector tests truncate theirs)."""
    url = run_async(lambda: _create_database(database_url))
    try:
        yield url
    finally:
        run_async(lambda: _drop_database(database_url, url))


@pytest.fixture(scope="session")
def api_storage_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Local storage shared by the API tests of this session."""
    return tmp_path_factory.mktemp("gateway-storage")


@pytest.fixture(scope="session")
def settings(
    database_url: str, kafka_bootstrap_servers: str, topic_prefix: str, api_storage_root: Path
) -> GatewaySettings:
    """The API's settings for this session."""
    return gateway_settings(database_url, kafka_bootstrap_servers, topic_prefix, api_storage_root)


@pytest.fixture(scope="session")
async def migrated(settings: GatewaySettings) -> GatewaySettings:
    """The session database, migrated to head."""
    await migrate(settings)
    return settings


@pytest.fixture(scope="session")
async def app(migrated: GatewaySettings) -> AsyncIterator[FastAPI]:
    """The gateway app with its lifespan running (which creates the first admin)."""
    application = create_app(migrated)
    async with LifespanManager(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict:
    """Tokens of a user, through the login endpoint."""
    response = await client.post(
        "/api/auth/login", data={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return response.json()


def bearer(tokens: dict) -> dict[str, str]:
    """The Authorization header of a token pair."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@dataclass(frozen=True)
class World:
    """Runs of two teams and of no team, and the headers of a user of every role."""

    admin: dict[str, str]
    analyst: dict[str, str]
    sales_a: dict[str, str]
    sales_b: dict[str, str]
    run_a1: RunScenario
    run_a2: RunScenario
    run_b1: RunScenario
    run_n1: RunScenario
    running: RunScenario

    @property
    def runs(self) -> tuple[RunScenario, ...]:
        return (self.run_a1, self.run_a2, self.run_b1, self.run_n1, self.running)


async def project_scenarios(
    settings: GatewaySettings, scenarios: list[RunScenario], *, ended: bool = True
) -> None:
    """Write scenarios' records the way the projector does (without the broker)."""
    conn = await connect(settings)
    try:
        records = [record for s in scenarios for record in s.records(ended=ended)]
        await write_chunk(conn, plan(records), {}, 0)
    finally:
        await conn.close()


async def write_outputs(storage: LocalStorage, scenario: RunScenario) -> None:
    """The report files and archive a completed run leaves in storage."""
    for index, key in enumerate(REPORT_KEYS):
        body = f"seller_loan_number\r\n{key}-{index}\r\n".encode()
        await storage.put_bytes(f"outputs/{scenario.run_id}/{key}.csv", body)
        await storage.put_bytes(f"archive/{scenario.run_id}/output/{key}.csv", body)
    await storage.put_bytes(f"archive/{scenario.run_id}/input/tape.csv", b"a,b\r\n1,2\r\n")


@pytest.fixture(scope="session")
async def world(app: FastAPI, client: httpx.AsyncClient, migrated: GatewaySettings) -> World:
    """Teams, users and five runs, projected once for the whole session."""
    async with app.state.sessionmaker() as session:
        await service.create_team(session, "Team A", "team-a")
        await service.create_team(session, "Team B", "team-b")
        for username, role, team in (
            ("analyst1", "analyst", None),
            ("sales_a", "sales_team", "team-a"),
            ("sales_b", "sales_team", "team-b"),
        ):
            await service.create_user(
                session,
                username=username,
                email=f"{username}@example.com",
                role=role,  # type: ignore[arg-type]
                password=PASSWORD,
                team_id=team,
            )
    day = timedelta(days=1)
    run_a1 = RunScenario(loans=30, sales_team_id="team-a", created_at=CREATED_AT)
    run_a2 = RunScenario(
        loans=8, sales_team_id="team-a", created_at=CREATED_AT + day, fail_phase="pricing"
    )
    run_b1 = RunScenario(loans=12, sales_team_id="team-b", created_at=CREATED_AT + 2 * day)
    run_n1 = RunScenario(loans=12, created_at=CREATED_AT + 3 * day)
    running = RunScenario(loans=10, created_at=CREATED_AT + 4 * day)
    await project_scenarios(migrated, [run_a1, run_a2, run_b1, run_n1])
    await project_scenarios(migrated, [running], ended=False)
    storage = app.state.storage
    for scenario in (run_a1, run_b1, run_n1):
        await write_outputs(storage, scenario)
    return World(
        admin=bearer(await login(client, "root")),
        analyst=bearer(await login(client, "analyst1")),
        sales_a=bearer(await login(client, "sales_a")),
        sales_b=bearer(await login(client, "sales_b")),
        run_a1=run_a1,
        run_a2=run_a2,
        run_b1=run_b1,
        run_n1=run_n1,
        running=running,
    )


async def runs_topic_events(
    settings: GatewaySettings, wanted: Callable[[dict], bool], count: int = 1
) -> list[dict]:
    """The first `count` events on runs.v1 that `wanted` accepts, read from the real broker."""
    consumer = AIOKafkaConsumer(
        settings.topic(RUNS),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[dict] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                found.extend(e for e in (loads(r.value) for r in records) if wanted(e))
    finally:
        await consumer.stop()
    return found


async def run_events_of(settings: GatewaySettings, run_id: str, count: int = 1) -> list[dict]:
    """The first `count` events of one run on runs.v1."""
    return await runs_topic_events(settings, lambda event: event["run_id"] == run_id, count)


async def publish_runs(settings: GatewaySettings, scenarios: list[RunScenario]) -> None:
    """Publish scenarios' events to the real broker, loan batches with their count headers."""
    async with KafkaPublisher(settings) as publisher:
        for scenario in scenarios:
            for topic, key, event in scenario.messages():
                headers = {name: value.decode() for name, value in headers_of(event)}
                await publisher.publish(topic, key, event, headers or None)


class RunningProjector:
    """A projector folding the log in the background of a module's tests.

    `start` returns once the projector has replayed what the log held when it started (the
    session's topics hold earlier modules' records): until then the review jobs wait.
    """

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.task: asyncio.Task[None] | None = None

    async def start(self, replay_timeout: float = 120.0) -> None:
        self.conn = await connect(self.settings)
        self.projector = Projector(self.settings, self.conn)
        await self.projector.start()
        self.stopping = asyncio.Event()
        self.task = asyncio.create_task(self.projector.run(self.stopping))
        probe = await connect(self.settings)
        try:
            deadline = asyncio.get_running_loop().time() + replay_timeout
            while await replaying(probe):
                assert asyncio.get_running_loop().time() < deadline, "replay did not catch up"
                await asyncio.sleep(0.1)
        finally:
            await probe.close()

    async def stop(self) -> None:
        if self.task is None:
            return
        self.stopping.set()
        await self.task
        await self.projector.stop()
        await self.conn.close()
        self.task = None
