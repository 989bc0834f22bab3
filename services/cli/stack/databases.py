"""Create and drop databases on a PostgreSQL server (the stack's database, test sessions)."""

import logging

import asyncpg

from services.cli.stack.urls import asyncpg_dsn, redact, sqlalchemy_url, with_database

logger = logging.getLogger(__name__)


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def can_connect(url: str, timeout: float = 3.0) -> bool:
    """Whether the server answers a trivial query at `url`."""
    try:
        connection = await asyncpg.connect(asyncpg_dsn(url), timeout=timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    try:
        await connection.fetchval("SELECT 1")
        return True
    finally:
        await connection.close()


async def create_database(server_url: str, name: str, exist_ok: bool = False) -> str:
    """Create database `name` on the server of `server_url`; return its SQLAlchemy URL."""
    connection = await asyncpg.connect(asyncpg_dsn(server_url), timeout=10)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and not exist_ok:
            raise RuntimeError(f"database {name} already exists on {redact(server_url)}")
        if not exists:
            await connection.execute(f"CREATE DATABASE {_quote_identifier(name)}")
            logger.info("database created", extra={"database": name})
    finally:
        await connection.close()
    return sqlalchemy_url(with_database(server_url, name))


async def drop_database(server_url: str, name: str) -> None:
    """Drop database `name`, disconnecting whoever is still connected."""
    connection = await asyncpg.connect(asyncpg_dsn(server_url), timeout=10)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {_quote_identifier(name)} WITH (FORCE)")
    finally:
        await connection.close()
