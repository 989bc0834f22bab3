"""Rebuild the read models from the log, and a digest of them two rebuilds must agree on.

A rebuild bumps the projector generation, truncates every read model and forgets the positions in
one transaction. If no projector process holds the projector lock, the rebuild replays the log
itself; otherwise the running projector notices the new generation and replays, and the rebuild
waits until it has caught up with the end of every partition as it was when the rebuild began.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.topics import ALL_TOPICS
from services.gateway.db import connect
from services.gateway.projector import indexes
from services.gateway.projector.consumer import Projector, PublishRaw
from services.gateway.projector.writer import read_positions
from services.gateway.read_models import ALL_READ_MODEL_TABLES as READ_MODEL_TABLES
from services.gateway.settings import GatewaySettings
from services.gateway.tables import SCHEMA

logger = logging.getLogger(__name__)
RESET_ATTEMPTS = 5
# One advisory lock id: held by the running projector process for as long as it runs.
PROJECTOR_LOCK = 0x6C6F616E_70726F6A  # "loanproj"


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """How a rebuild went."""

    generation: int
    replayed_by: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Checksum:
    """A digest of every read model, and each table's rows and digest."""

    digest: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)


async def try_projector_lock(conn: asyncpg.Connection) -> bool:
    """Take the projector lock if no one holds it (released when the connection closes)."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", PROJECTOR_LOCK))


async def wait_projector_lock(conn: asyncpg.Connection) -> None:
    """Block until this connection holds the projector lock (a standby projector waits here)."""
    await conn.execute("SELECT pg_advisory_lock($1)", PROJECTOR_LOCK)


async def release_projector_lock(conn: asyncpg.Connection) -> None:
    """Give the projector lock back."""
    await conn.execute("SELECT pg_advisory_unlock($1)", PROJECTOR_LOCK)


async def reset(conn: asyncpg.Connection, attempts: int = RESET_ATTEMPTS) -> int:
    """Truncate the read models and positions under a new generation; return it.

    TRUNCATE locks the tables one after another while the API, the review jobs and the
    projector read them, each in its own order: a reader holding one table and asking for
    another that TRUNCATE already holds is a deadlock, which PostgreSQL breaks by aborting one
    side. When that is the reset, it is tried again once the reader has gone.
    """
    tables = ", ".join(f"{SCHEMA}.{table.name}" for table in READ_MODEL_TABLES)
    attempt = 0
    while True:
        attempt += 1
        try:
            async with conn.transaction():
                # Updating the state row first waits for an in-flight projector chunk
                # (FOR SHARE) to end.
                generation = await conn.fetchval(
                    f"UPDATE {SCHEMA}.projector_state SET generation = generation + 1, "
                    "rebuilt_at = now(), replaying = true WHERE id = 1 RETURNING generation"
                )
                await conn.execute(f"TRUNCATE {tables}, {SCHEMA}.projector_positions")
            return int(generation)
        except asyncpg.DeadlockDetectedError:
            if attempt == attempts:
                raise
            logger.warning("reset lost a deadlock with a reader, trying again")
            await asyncio.sleep(0.2 * attempt)


async def rebuild(
    settings: GatewaySettings, *, publish_raw: PublishRaw | None = None, timeout: float = 600.0
) -> RebuildResult:
    """Reset the read models and replay the log into them; return when they are caught up."""
    started = time.monotonic()
    conn = await connect(settings)
    try:
        if await try_projector_lock(conn):
            try:
                generation = await reset(conn)
                projector = Projector(settings, conn, publish_raw)
                await projector.start()
                try:
                    await projector.catch_up(timeout)
                finally:
                    await projector.stop()
            finally:
                await release_projector_lock(conn)
            return RebuildResult(generation, "rebuild", time.monotonic() - started)
        generation = await reset(conn)
        await wait_caught_up(settings, conn, timeout)
        return RebuildResult(generation, "projector", time.monotonic() - started)
    finally:
        await conn.close()


async def wait_caught_up(
    settings: GatewaySettings, conn: asyncpg.Connection, timeout: float = 600.0
) -> None:
    """Wait until the stored positions reach the current end of every partition and the
    projector has built the indexes a bulk replay dropped."""
    targets = await end_offsets(settings)
    deadline = time.monotonic() + timeout
    while True:
        stored = await read_positions(conn)
        behind = [tp for tp, end in targets.items() if end > 0 and stored.get(tp, 0) < end]
        if not behind and len(await indexes.present(conn)) == len(indexes.SECONDARY_INDEXES):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"projector still behind on {len(behind)} partitions")
        await asyncio.sleep(0.5)


async def end_offsets(settings: GatewaySettings) -> dict[tuple[str, int], int]:
    """The end offset of every partition of every registry topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(settings.topic(topic), pid)
            for topic in ALL_TOPICS
            for pid in sorted(cluster.partitions_for_topic(settings.topic(topic)) or ())
        ]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


async def checksum(settings: GatewaySettings) -> Checksum:
    """A sha256 over every read model's rows in primary-key order, from one snapshot."""
    conn = await connect(settings)
    try:
        await conn.execute("SET TIME ZONE 'UTC'")
        overall = hashlib.sha256()
        tables: dict[str, dict[str, Any]] = {}
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            for table in READ_MODEL_TABLES:
                order = ", ".join(f'"{column.name}"' for column in table.primary_key.columns)
                digest = hashlib.sha256()
                rows = 0
                query = f"SELECT t::text FROM {SCHEMA}.{table.name} t ORDER BY {order}"
                async for record in conn.cursor(query, prefetch=5000):
                    digest.update(record[0].encode())
                    digest.update(b"\n")
                    rows += 1
                tables[table.name] = {"rows": rows, "sha256": digest.hexdigest()}
                overall.update(f"{table.name}:{digest.hexdigest()}\n".encode())
        return Checksum(overall.hexdigest(), tables)
    finally:
        await conn.close()
