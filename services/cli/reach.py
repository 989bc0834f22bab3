"""How every command finds the running stack, and the one line it prints when it cannot.

Settings come from the environment first, then the stack's `.stack/env` (written by `stack up`),
then `.env` in the current folder, then the defaults; so an operator with an empty environment
reaches the stack `stack up` started. An unreachable broker or database ends the command with
one line naming what was tried and what to do, and exit code 1 (never a traceback).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import typer

from services.cli.stack.settings import StackSettings
from services.cli.stack.urls import redact

T = TypeVar("T")

START_THE_STACK = "start the stack with `loan-engine stack up`"


def env_files() -> tuple[Path, ...]:
    """The env files settings are read from, the later winning (the environment beats both)."""
    return (Path(".env"), StackSettings().env_file)


def fail(message: str) -> NoReturn:
    """Print one error line on stderr and end with exit code 1."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def reason(error: BaseException) -> str:
    """`Type: first line of the message`, short enough for one line."""
    name = type(error).__name__
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text.removeprefix(f"{name}: ")
    return f"{name}: {text[:200]}" if text else name


def kafka_unreachable(bootstrap_servers: str, error: BaseException) -> NoReturn:
    """End the command: the broker did not answer."""
    fail(
        f"cannot reach Kafka at {bootstrap_servers} ({reason(error)}); {START_THE_STACK}, "
        "or set KAFKA_BOOTSTRAP_SERVERS to a running broker"
    )


def database_unreachable(url: str, error: BaseException) -> NoReturn:
    """End the command: the database did not answer (or has no schema yet)."""
    if _is_missing_schema(error):
        fail(
            f"the database at {redact(url)} has no Loan Engine schema yet ({reason(error)}); "
            "apply it with `loan-engine stack migrate` (or `loan-engine stack up`)"
        )
    fail(
        f"cannot reach PostgreSQL at {redact(url)} ({reason(error)}); {START_THE_STACK}, "
        "or set DATABASE_URL to a running database"
    )


def is_kafka_error(error: BaseException) -> bool:
    """Whether the error came from the Kafka client."""
    from aiokafka.errors import KafkaError

    return isinstance(error, KafkaError)


def is_database_error(error: BaseException) -> bool:
    """Whether the error means the database cannot be used: down, refused, no such database,
    not allowed in, or not migrated (a constraint violation, say, is no such error)."""
    import asyncpg

    unusable = (
        OSError,
        TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.InvalidCatalogNameError,
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
    )
    return any(isinstance(seen, unusable) for seen in _chain(error)) or _is_missing_schema(error)


def _chain(error: BaseException) -> list[BaseException]:
    """The error and what it wraps (`__cause__`, SQLAlchemy's `.orig`)."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return chain


def _is_missing_schema(error: BaseException) -> bool:
    import asyncpg

    missing = (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError)
    return any(isinstance(seen, missing) for seen in _chain(error))


def guarded(work: Callable[[], T], *, bootstrap_servers: str, database_url: str | None) -> T:
    """Run `work`; a broker or database that does not answer ends the command in one line."""
    try:
        return work()
    except Exception as error:
        if is_kafka_error(error):
            kafka_unreachable(bootstrap_servers, error)
        if database_url is not None and is_database_error(error):
            database_unreachable(database_url, error)
        if isinstance(error, OSError):
            kafka_unreachable(bootstrap_servers, error)
        raise
