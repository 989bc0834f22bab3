"""Readiness checks (SPEC §5): each names one dependency and raises when it is not usable."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.common.settings import ServiceSettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from services.common.kafka import ProducerRenewal
    from services.common.storage import Storage

CHECK_TIMEOUT_SECONDS = 3.0


class NotReady(Exception):
    """A dependency answered, but not in a usable way."""


@dataclass(frozen=True, slots=True)
class ReadyCheck:
    """One named dependency check: `check()` returns when usable and raises otherwise."""

    name: str
    check: Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Readiness:
    """The outcome of every check: `failing` names the components that are down."""

    checks: dict[str, str]
    failing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.failing

    def as_json(self) -> dict[str, Any]:
        """The body of `/health/ready`."""
        return {
            "status": "ready" if self.ready else "unavailable",
            "failing": list(self.failing),
            "checks": self.checks,
        }


async def _run_one(check: ReadyCheck, timeout: float) -> str:
    try:
        await asyncio.wait_for(check.check(), timeout)
    except TimeoutError:
        return f"timed out after {timeout:g}s"
    except Exception as exc:  # every failure, whatever its kind, means "not ready"
        return f"{type(exc).__name__}: {exc}"[:300]
    return "ok"


async def run_checks(
    checks: Sequence[ReadyCheck], timeout: float = CHECK_TIMEOUT_SECONDS
) -> Readiness:
    """Run every check concurrently, each bounded by `timeout`."""
    outcomes = await asyncio.gather(*(_run_one(check, timeout) for check in checks))
    results = {check.name: outcome for check, outcome in zip(checks, outcomes, strict=True)}
    failing = tuple(name for name, outcome in results.items() if outcome != "ok")
    return Readiness(results, failing)


def kafka_ready(settings: ServiceSettings) -> ReadyCheck:
    """The broker answers a metadata request at the configured bootstrap servers."""

    async def check() -> None:
        from aiokafka import AIOKafkaClient

        client = AIOKafkaClient(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=f"{settings.service_name}-health",
            request_timeout_ms=int(CHECK_TIMEOUT_SECONDS * 1000),
        )
        try:
            await client.bootstrap()
            if not client.cluster.brokers():
                raise NotReady("no broker in cluster metadata")
        finally:
            await client.close()

    return ReadyCheck("kafka", check)


def broker_ready(broker: Any, timeout: float = CHECK_TIMEOUT_SECONDS) -> ReadyCheck:
    """A running FastStream broker's own connection answers a ping."""

    async def check() -> None:
        if not await broker.ping(timeout):
            raise NotReady("broker does not answer")

    return ReadyCheck("kafka", check)


def producer_ready(renewal: ProducerRenewal) -> ReadyCheck:
    """The worker's producer delivers: not replaced-and-unstarted, its last send went through."""

    async def check() -> None:
        if renewal.stale:
            raise NotReady(f"producer could not be replaced: {renewal.last_error}")
        if renewal.failing_since is not None:
            raise NotReady(f"sends fail: {renewal.last_error}")

    return ReadyCheck("kafka-producer", check)


def database_ready(engine: AsyncEngine) -> ReadyCheck:
    """PostgreSQL accepts a connection and answers `SELECT 1`."""

    async def check() -> None:
        from sqlalchemy import text

        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return ReadyCheck("database", check)


def storage_ready(storage: Storage) -> ReadyCheck:
    """The storage backend is reachable (local root writable, S3 bucket present)."""
    return ReadyCheck("storage", storage.ping)
