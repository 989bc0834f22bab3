"""The projector process: `python -m services.gateway.projector.main`.

Serves `/health`, `/health/ready` and `/metrics` on GATEWAY_PROJECTOR_HTTP_PORT while it projects
every topic into PostgreSQL. One projector is active at a time (a PostgreSQL advisory lock); a
second one waits as a standby. SIGTERM finishes the chunk in hand, whose positions commit with it.

When PostgreSQL or the broker goes away (a restart, a failover), the projector reconnects with
exponential back-off and jitter and carries on from the positions it committed with its last
write; readiness names the dependency that is down meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import tenacity

from services.common.consumer import is_transient
from services.common.health import kafka_ready
from services.common.kafka import KafkaPublisher
from services.common.metrics import report_consumer_lag
from services.common.runtime import wait_until_ready
from services.common.storage import storage_from_settings
from services.gateway.db import connect
from services.gateway.projector.consumer import SERVICE, Projector
from services.gateway.projector.maintenance import wait_projector_lock
from services.gateway.reconciliation.job import reconcile_completed_runs
from services.gateway.settings import GatewaySettings
from services.gateway.worker import run_process, serve_with_health

logger = logging.getLogger(__name__)

# Reconnect back-off: 0.5 s doubling up to 15 s, each with up to 1 s of jitter.
RECONNECT_INITIAL_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 15.0


async def project(settings: GatewaySettings, stop: asyncio.Event) -> None:
    """Wait for the broker, then project until `stop` is set, reconnecting after a transient
    failure (database or broker restarted) with exponential back-off and jitter."""
    await wait_until_ready(kafka_ready(settings))

    async def sleep(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    def log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        logger.warning(
            "projector lost a dependency, reconnecting",
            extra={
                "attempt": state.attempt_number,
                "error": f"{type(error).__name__}: {error}",
                "retry_in": round(state.upcoming_sleep, 2),
            },
        )

    retrying = tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(lambda exc: is_transient(exc) and not stop.is_set()),
        wait=tenacity.wait_exponential_jitter(
            initial=RECONNECT_INITIAL_SECONDS, max=RECONNECT_MAX_SECONDS
        ),
        sleep=sleep,
        before_sleep=log_retry,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            if not stop.is_set():
                await project_once(settings, stop)


async def project_once(settings: GatewaySettings, stop: asyncio.Event) -> None:
    """Connect, take the projector lock, seek to the stored positions and project."""
    lock_conn = await connect(settings)
    conn = await connect(settings)
    publisher = KafkaPublisher(settings)
    try:
        if not await _until_stopped(wait_projector_lock(lock_conn), stop):
            return
        logger.info("projector lock held, projecting")
        await publisher.start()
        projector = Projector(settings, conn, publisher.publish_raw)
        await projector.start()
        lag = asyncio.create_task(
            report_consumer_lag(
                lambda: [projector.consumer] if projector.consumer else [],
                SERVICE,
                topic_prefix=settings.topic_prefix,
            )
        )
        reconciling = asyncio.create_task(
            reconcile_completed_runs(settings, storage_from_settings(settings), stop)
        )
        try:
            await projector.run(stop)
        finally:
            lag.cancel()
            reconciling.cancel()
            await projector.stop()
    finally:
        await publisher.stop()
        await conn.close()
        await lock_conn.close()


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run `work` unless `stop` is set first (then cancel it); whether it finished."""
    task = asyncio.create_task(work)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


async def serve(settings: GatewaySettings) -> None:
    """Run the health server and the projector until SIGTERM or SIGINT."""
    await serve_with_health(
        settings, settings.projector_http_port, lambda stop: project(settings, stop)
    )


def main() -> None:
    """Run the projector until SIGTERM."""
    run_process("projector", serve)


if __name__ == "__main__":
    main()
