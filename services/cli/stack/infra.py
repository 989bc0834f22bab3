"""Kafka and PostgreSQL from the local stack for a test session (the fixtures' last resort).

What is already up (a developer's `stack up`) is reused and left running; what the session
starts itself is stopped when the session ends.
"""

import contextlib
import logging
from collections.abc import Iterator

from services.cli.stack import lifecycle, postgres, state, supervisor
from services.cli.stack.settings import StackSettings

logger = logging.getLogger(__name__)


def _progress(message: str) -> None:
    logger.info("stack", extra={"step": message})


@contextlib.contextmanager
def kafka_for_tests(settings: StackSettings | None = None) -> Iterator[str]:
    """The stack's broker for the duration of the block; yields its bootstrap servers."""
    settings = settings or StackSettings()
    with lifecycle.locked(settings):
        recorded = state.load(settings.state)
        started = lifecycle.ensure_kafka(settings, recorded, _progress)
    try:
        yield settings.kafka_bootstrap_servers
    finally:
        if started:
            with lifecycle.locked(settings):
                recorded = state.load(settings.state)
                spawned = recorded.processes.pop(lifecycle.KAFKA, None)
                if spawned is not None:
                    supervisor.stop(spawned, settings.stop_timeout)
                state.save(settings.state, recorded)


@contextlib.contextmanager
def postgres_for_tests(settings: StackSettings | None = None) -> Iterator[str]:
    """The stack's PostgreSQL for the duration of the block; yields a server URL."""
    settings = settings or StackSettings()
    if settings.database_url:
        yield settings.database_url
        return
    with lifecycle.locked(settings):
        recorded = state.load(settings.state)
        started = lifecycle.ensure_database(settings, recorded, _progress)
    try:
        yield postgres.server_url(settings)
    finally:
        if started:
            with lifecycle.locked(settings):
                postgres.stop(settings)
                recorded = state.load(settings.state)
                recorded.postgres_private = False
                state.save(settings.state, recorded)
