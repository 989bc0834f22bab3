"""Alembic environment of the gateway: schema `gateway`, its version table there too."""

import asyncio
import logging.config

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.gateway.settings import GatewaySettings
from services.gateway.tables import SCHEMA, metadata

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    # A caller (tests, the CLI) may hand the URL over; otherwise the settings read DATABASE_URL.
    return config.attributes.get("database_url") or GatewaySettings().database_dsn


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=metadata,
        version_table_schema=SCHEMA,
        include_schemas=True,
        include_name=lambda name, type_, _parent: type_ != "schema" or name == SCHEMA,
    )


def _run_sync(connection: Connection) -> None:
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    # Called from async code (services.gateway.db.migrate) with a connection already open.
    _run_sync(given)
else:
    asyncio.run(_run_online())
