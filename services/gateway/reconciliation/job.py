"""Reconcile every completed run automatically: a loop beside the projector, in its process.

The projector process is the one active reader of the log (an advisory lock), so one job runs
however many API replicas there are. It asks the read models for completed runs never
reconciled (or reconciled before their latest completion), so it also catches up after a
restart; after each round it refreshes `loan_engine_reconciliation_findings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import async_sessionmaker

from services.common.storage import Storage
from services.gateway.db import make_engine
from services.gateway.reconciliation import repository as repo
from services.gateway.reconciliation.service import reconcile, refresh_metric
from services.gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)
INTERVAL_SECONDS = 5.0
RUNS_PER_ROUND = 5


async def reconcile_completed_runs(
    settings: GatewaySettings, storage: Storage, stop: asyncio.Event
) -> None:
    """Until `stop`: reconcile completed runs as they complete."""
    engine = make_engine(settings)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        while not stop.is_set():
            try:
                async with sessions() as session:
                    for run_id in await repo.pending_runs(session, RUNS_PER_ROUND):
                        summary = await reconcile(session, storage, run_id)
                        await session.commit()
                        logger.info(
                            "run reconciled",
                            extra={"run_id": str(run_id), "status": summary["status"]},
                        )
                    await refresh_metric(session)
            except Exception:  # the database or storage is down: try again next round
                logger.exception("reconciliation round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), INTERVAL_SECONDS)
    finally:
        await engine.dispose()
