"""Rate limits shared between gateway replicas through a real Redis, and what the gateway does when
its rate-limit storage is down or misconfigured."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from limits.errors import ConfigurationError

from services.common.metrics import REGISTRY
from services.gateway import ratelimit
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


def unchecked() -> float:
    """Requests answered without rate limits so far, as the gateway's metric counts them."""
    return REGISTRY.get_sample_value("loan_engine_rate_limit_unchecked_requests_total") or 0.0


def rate_limit_log(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """The rate-limit middleware's log lines so far: level and message."""
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == RATE_LIMIT_LOGGER]


OUTAGE_BEGINS = (
    logging.ERROR,
    "rate limit storage unavailable; requests are not rate limited until it answers",
)
OUTAGE_ENDS = (logging.WARNING, "rate limit storage answers again; requests are rate limited")


@pytest.mark.parametrize("down", ["refused", "silent"])
async def test_a_rate_limit_storage_that_is_down_is_logged_once_and_requests_still_answer(
    migrated: GatewaySettings,
    silent_port: int,
    caplog: pytest.LogCaptureFixture,
    down: str,
) -> None:
    port = silent_port if down == "silent" else free_port()
    caplog.set_level(logging.INFO, logger=RATE_LIMIT_LOGGER)
    before = unchecked()
    async with replicas(migrated, f"redis://127.0.0.1:{port}", count=1) as (client,):
        answers = await spread([client], LIMIT + 2)
        health = await client.get("/health")
    assert [a.status_code for a in answers] == [401] * (LIMIT + 2)
    assert all("X-RateLimit-Limit" not in a.headers for a in answers)
    assert health.status_code == 200
    assert rate_limit_log(caplog) == [OUTAGE_BEGINS]
    outage = next(r for r in caplog.records if r.name == RATE_LIMIT_LOGGER)
    assert getattr(outage, "storage", None) == f"redis://127.0.0.1:{port}"
    assert unchecked() - before == LIMIT + 2


class Cable:
    """A loopback TCP relay in front of a real server that a test can cut and reconnect."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def connect(self) -> None:
        """Accept connections on `port` and relay them to the target."""
        self.server = await asyncio.start_server(self.relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()

    async def relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self.writers -= {writer, upstream_writer}


async def test_a_rate_limit_outage_is_logged_when_it_begins_and_when_it_ends(
    migrated: GatewaySettings,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "STORAGE_RETRY_SECONDS", 0.2)
    target = urlsplit(redis_url)
    cable = Cable(target.hostname or "127.0.0.1", target.port or 6379)
    await cable.connect()
    caplog.set_level(logging.INFO, logger=RATE_LIMIT_LOGGER)
    async with replicas(migrated, f"redis://127.0.0.1:{cable.port}", count=1) as (client,):
        counted = await spread([client], 1)
        await cable.cut()
        before = unchecked()
        during = await spread([client], 3)
        await cable.connect()
        await asyncio.sleep(0.3)  # past the retry interval: the next request asks the storage
        after = await spread([client], 1)
    await cable.cut()
    assert [a.status_code for a in counted + during + after] == [401] * 5
    assert "X-RateLimit-Remaining" in counted[0].headers
    assert all("X-RateLimit-Remaining" not in a.headers for a in during)
    assert unchecked() - before == 3
    # The storage's window kept counting across the outage: the request before it and this one.
    assert after[0].headers["X-RateLimit-Remaining"] == str(LIMIT - 2)
    assert rate_limit_log(caplog) == [
        (logging.INFO, "rate limit storage ready"),
        OUTAGE_BEGINS,
        OUTAGE_ENDS,
    ]
    ended = [r for r in caplog.records if r.getMessage() == OUTAGE_ENDS[1]]
    assert getattr(ended[0], "outage_seconds", 0) >= 0.3


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
