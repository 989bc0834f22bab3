"""Database plumbing of the gateway: the engine, raw asyncpg connections, and migrations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from services.gateway.settings import GatewaySettings

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
ALEMBIC_SECTION = "gateway"
# A pooled connection idle this long is pinged before use; a busy one is not.
IDLE_PING_SECONDS = 5.0


def asyncpg_dsn(url: str) -> str:
    """A libpq DSN for asyncpg from a SQLAlchemy URL (`postgresql+asyncpg://` → `postgresql://`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


async def connect(settings: GatewaySettings) -> asyncpg.Connection:
    """One raw asyncpg connection (the projector's COPY path, the checksum)."""
    return await asyncpg.connect(
        asyncpg_dsn(settings.database_dsn),
        server_settings={"application_name": f"{settings.service_name}-projector"},
    )


def make_engine(settings: GatewaySettings) -> AsyncEngine:
    """The API's SQLAlchemy engine; pooled connections idle for a while are pinged before use."""
    engine = create_async_engine(
        settings.database_dsn,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": settings.service_name}},
    )
    ping_when_idle(engine)
    return engine


def ping_when_idle(engine: AsyncEngine, idle_seconds: float = IDLE_PING_SECONDS) -> None:
    """Ping a pooled connection at checkout only if it sat unused for `idle_seconds`.

    `pool_pre_ping` pings at every checkout: three round trips with asyncpg (BEGIN, `;`,
    ROLLBACK) before each request's own queries. A connection in steady use has just proved
    itself; the one that can be stale (a database restarted meanwhile) is the one left idle.
    A failed ping raises DisconnectionError, on which the pool connects afresh; a connection
    lost mid-use still invalidates the whole pool, as before.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def checked_in(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def checked_out(dbapi: Any, record: ConnectionPoolEntry, _: PoolProxiedConnection) -> None:
        returned = record.info.get("checked_in")
        if returned is None or time.monotonic() - returned < idle_seconds:
            return
        try:
            dbapi.ping()
        except Exception as error:  # whatever the driver raised: this connection is gone
            raise DisconnectionError(str(error)) from error


def alembic_config(database_url: str | None = None) -> Config:
    """The gateway's Alembic configuration, optionally pointed at `database_url`."""
    config = Config(str(ALEMBIC_INI), ini_section=ALEMBIC_SECTION)
    config.attributes["skip_logging"] = True
    if database_url:
        config.attributes["database_url"] = database_url
    return config


async def migrate(settings: GatewaySettings, revision: str = "head") -> None:
    """Upgrade the gateway schema to `revision` (tests, the CLI, a first start)."""
    engine = create_async_engine(settings.database_dsn)

    def upgrade(connection: Connection) -> None:
        config = alembic_config(settings.database_dsn)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade)
    finally:
        await engine.dispose()
