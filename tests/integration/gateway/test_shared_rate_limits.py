"""Rate limits shared between gateway replicas through a real Redis, and what the gateway does when
its rate-limit storage is down or misconfigured."""

from __future__ import annotations

import ipaddress
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager
from limits.errors import ConfigurationError

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.net import free_port

pytestmark = pytest.mark.integration

LIMIT = 3
RATE_LIMIT_LOGGER = "services.gateway.ratelimit"


@asynccontextmanager
async def replicas(
    settings: GatewaySettings, storage: str, count: int = 2
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` gateway apps, each with its own lifespan, counting in `storage`; one client each,
    all calling from the same fresh address (so a shared Redis holds no counts of theirs yet)."""
    configured = settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_storage": storage,
            "rate_limit_api": f"{LIMIT}/minute",
        }
    )
    caller = (str(ipaddress.IPv6Address(uuid.uuid4().int)), 40000)
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(count):
            app = create_app(configured)
            await stack.enter_async_context(LifespanManager(app))
            transport = httpx.ASGITransport(app=app, client=caller)
            client = httpx.AsyncClient(transport=transport, base_url="http://gateway")
            clients.append(await stack.enter_async_context(client))
        yield clients


async def spread(clients: list[httpx.AsyncClient], requests: int) -> list[httpx.Response]:
    """Anonymous API requests (counted per caller address) sent to each replica in turn."""
    return [await clients[i % len(clients)].get("/api/runs") for i in range(requests)]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung Redis)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


async def test_replicas_sharing_redis_refuse_requests_once_the_shared_limit_is_used_up(
    migrated: GatewaySettings, redis_url: str
) -> None:
    async with replicas(migrated, redis_url) as clients:
        answers = await spread(clients, LIMIT + 2)
    assert [a.status_code for a in answers] == [401] * LIMIT + [429, 429]
    # Each replica's answer counts what the other one saw: the window lives in Redis.
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:LIMIT]] == ["2", "1", "0"]
    for refused in answers[LIMIT:]:
        assert refused.headers["X-RateLimit-Limit"] == str(LIMIT)
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["error"] == "Too many requests"


async def test_replicas_counting_in_memory_each_allow_the_whole_limit(
    migrated: GatewaySettings,
) -> None:
    async with replicas(migrated, "memory://") as clients:
        answers = await spread(clients, 2 * LIMIT)
    assert [a.status_code for a in answers] == [401] * (2 * LIMIT)
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "2", "1", "1", "0", "0"]


@pytest.mark.parametrize("down", ["refused", "silent"])
async def test_a_rate_limit_storage_that_is_down_is_logged_and_requests_still_answer(
    migrated: GatewaySettings,
    silent_port: int,
    caplog: pytest.LogCaptureFixture,
    down: str,
) -> None:
    port = silent_port if down == "silent" else free_port()
    caplog.set_level(logging.INFO, logger=RATE_LIMIT_LOGGER)
    async with replicas(migrated, f"redis://127.0.0.1:{port}", count=1) as (client,):
        at_startup = [r.getMessage() for r in caplog.records if r.name == RATE_LIMIT_LOGGER]
        caplog.clear()
        answers = await spread([client], LIMIT + 2)
        health = await client.get("/health")
    assert at_startup == [
        "rate limit storage unreachable; requests are not rate limited until it answers"
    ]
    assert [a.status_code for a in answers] == [401] * (LIMIT + 2)
    assert all("X-RateLimit-Limit" not in a.headers for a in answers)
    assert health.status_code == 200
    failures = [r for r in caplog.records if r.name == RATE_LIMIT_LOGGER]
    assert [r.getMessage() for r in failures] == [
        "rate limit storage unavailable; request not rate limited"
    ] * (LIMIT + 2)
    assert all(r.levelno == logging.ERROR for r in failures)
    assert {getattr(r, "storage", None) for r in failures} == {f"redis://127.0.0.1:{port}"}


async def test_a_rate_limit_storage_that_answers_is_logged_as_ready_at_startup(
    migrated: GatewaySettings, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=RATE_LIMIT_LOGGER)
    async with replicas(migrated, redis_url, count=1):
        pass
    messages = [r.getMessage() for r in caplog.records if r.name == RATE_LIMIT_LOGGER]
    assert messages == ["rate limit storage ready"]


async def test_an_unusable_rate_limit_storage_uri_fails_startup_naming_the_setting(
    migrated: GatewaySettings,
) -> None:
    with pytest.raises(ConfigurationError) as failure:
        async with replicas(migrated, "nope://limits:hunter2@cache:6379", count=1):
            pass
    message = str(failure.value)
    assert message.startswith("GATEWAY_RATE_LIMIT_STORAGE=nope://limits:***@cache:6379")
    assert "hunter2" not in message
