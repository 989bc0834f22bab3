"""Readiness follows the database: a throwaway PostgreSQL cluster is stopped under a running
gateway and under a worker's health app, and both answer 503 naming `database`.

The shared development PostgreSQL is never touched: the cluster here is the stack's own
`initdb`-ed kind, on a free port, in a temporary folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import create_async_engine

from services.cli.stack import postgres
from services.cli.stack.settings import StackSettings
from services.common.health import database_ready
from services.common.runtime import health_routes
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.net import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    """A private PostgreSQL cluster of this module, started; removed afterwards."""
    stack = StackSettings(
        state_dir=tmp_path_factory.mktemp("db-down-stack"),
        postgres_port=free_port(),
        postgres_database="db_down",
        # The cluster's own database, never the shared DATABASE_URL of the environment.
        database_url=None,
    )
    postgres.start(stack, lambda _message: None)
    try:
        yield stack
    finally:
        postgres.stop(stack)
        postgres.purge(stack, lambda _message: None)


@pytest.fixture(scope="module")
async def gateway(
    cluster: StackSettings,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway over the throwaway cluster (no admin: the schema is not needed here)."""
    settings = GatewaySettings(
        database_url=postgres.database_url(cluster),
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=topic_prefix,
        storage_type="local",
        storage_root=Path(tmp_path_factory.mktemp("db-down-storage")),
        environment="test",
        jwt_secret="test-secret-key-with-enough-length-for-hs256",  # type: ignore[arg-type]
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


async def ready_within(http: httpx.AsyncClient, status: int, seconds: float = 20) -> httpx.Response:
    """`/health/ready` once it answers `status` (pooled connections notice a stop lazily)."""
    deadline = asyncio.get_running_loop().time() + seconds
    response = await http.get("/health/ready")
    while response.status_code != status and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.5)
        response = await http.get("/health/ready")
    return response


async def test_gateway_and_worker_readiness_name_the_database_once_it_stops(
    cluster: StackSettings, gateway: httpx.AsyncClient, kafka_bootstrap_servers: str
) -> None:
    engine = create_async_engine(postgres.database_url(cluster), pool_pre_ping=True)
    broker = KafkaBroker(kafka_bootstrap_servers)
    worker_app = AsgiFastStream(broker, asgi_routes=health_routes([database_ready(engine)]))
    worker = httpx.AsyncClient(transport=httpx.ASGITransport(app=worker_app), base_url="http://w")
    try:
        up = await ready_within(gateway, 200)
        assert up.status_code == 200, up.text
        assert (await worker.get("/health/ready")).status_code == 200

        await asyncio.to_thread(postgres.stop, cluster)

        down = await ready_within(gateway, 503)
        assert down.status_code == 503
        assert down.json()["failing"] == ["database"]
        assert down.json()["checks"]["kafka"] == "ok"
        worker_down = await worker.get("/health/ready")
        assert worker_down.status_code == 503
        assert worker_down.json()["failing"] == ["database"]
        assert (await gateway.get("/health")).status_code == 200
    finally:
        await worker.aclose()
        await engine.dispose()
