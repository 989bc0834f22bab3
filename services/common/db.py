"""PostgreSQL access: one async engine per process, sessions that the caller commits."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from services.common.settings import ServiceSettings

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


def make_engine(settings: ServiceSettings, *, pool_size: int = 5) -> AsyncEngine:
    """An asyncpg engine for `settings.database_url`; pings pooled connections before use."""
    return create_async_engine(
        settings.database_dsn,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # A broken connection is replaced rather than kept for an hour.
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": settings.service_name}},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions bound to `engine`; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(section: str, database_url: str | None = None) -> Config:
    """The Alembic configuration of one service's section of the repo-root `alembic.ini`."""
    config = Config(str(ALEMBIC_INI), ini_section=section)
    config.attributes["skip_logging"] = True
    if database_url:
        config.attributes["database_url"] = database_url
    return config


async def upgrade(engine: AsyncEngine, section: str, revision: str = "head") -> None:
    """Upgrade one service's schema (`alembic -n SECTION upgrade head`) on `engine`."""

    def run(connection: Connection) -> None:
        config = alembic_config(section)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)
