"""Database plumbing of the gateway: the engine, raw asyncpg connections, and migrations."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.gateway.settings import GatewaySettings

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
ALEMBIC_SECTION = "gateway"


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
    """The API's SQLAlchemy engine; pooled connections are pinged before use."""
    return create_async_engine(
        settings.database_dsn,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": settings.service_name}},
    )


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
