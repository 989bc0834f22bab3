"""The one Alembic environment body: each service's `migrations/env.py` names its schema.

Each service owns one PostgreSQL schema with its version table inside it. Replicas that start
together take an advisory lock, so one migrates and the others wait for it.
"""

import asyncio
import logging.config
import zlib
from collections.abc import Callable

from alembic import context
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def run_environment(schema: str, metadata: MetaData, default_url: Callable[[], str]) -> None:
    """Run the migrations of `schema`: offline, on a caller's connection, or on a new engine."""
    config = context.config
    if config.config_file_name is not None and not config.attributes.get("skip_logging"):
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
    lock_key = zlib.crc32(f"loan-engine-migrate-{schema}".encode())

    def configure(connection: Connection | None = None, url: str | None = None) -> None:
        context.configure(
            connection=connection,
            url=url,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, _parent: type_ != "schema" or name == schema,
        )

    def run_sync(connection: Connection) -> None:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()

    async def run_online(url: str) -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(run_sync)
        finally:
            await engine.dispose()

    # A caller (tests, the CLI, a worker's first start) may hand over the URL or a connection.
    url = config.attributes.get("database_url") or default_url()
    if context.is_offline_mode():
        configure(url=url)
        with context.begin_transaction():
            context.run_migrations()
    elif (given := config.attributes.get("connection")) is not None:
        run_sync(given)
    else:
        asyncio.run(run_online(url))
