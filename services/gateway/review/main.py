"""The review jobs process: `python -m services.gateway.review.main` (the stack's `jobs`).

Runs the review jobs (`jobs.py`: case openings, auto decisions, SLA marks, auto-assign,
notifications, webhook delivery) every GATEWAY_REVIEW_JOB_SECONDS on an event loop of their own,
not the API's: batch work that would otherwise hold up requests. Serves `/health`,
`/health/ready` (broker, database) and `/metrics` on GATEWAY_JOBS_HTTP_PORT. SIGTERM finishes the
tick in hand, but for webhook POSTs still in flight: those are abandoned, their deliveries left
pending for the next start (a receiver that never answers must not keep the process past its
supervisor's stop timeout); then the publisher flushes and the engine closes.

A failed tick (the database or the broker away) is logged and the next one retries; the
publisher connects on first use and again after a failed start.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import async_sessionmaker

from services.gateway.db import make_engine
from services.gateway.publisher import LazyPublisher
from services.gateway.review.jobs import ReviewJobs
from services.gateway.settings import GatewaySettings
from services.gateway.worker import run_process, serve_with_health

SERVICE = "review-jobs"


async def run_jobs(settings: GatewaySettings, stop: asyncio.Event) -> None:
    """Run the review jobs until `stop` is set, on an engine and a publisher of their own."""
    engine = make_engine(settings)
    publisher = LazyPublisher(settings)
    try:
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        await ReviewJobs(sessionmaker, publisher, settings).run(stop)
    finally:
        await publisher.stop()
        await engine.dispose()


async def serve(settings: GatewaySettings) -> None:
    """Run the health server and the review jobs until SIGTERM or SIGINT."""
    await serve_with_health(
        settings, settings.jobs_http_port, lambda stop: run_jobs(settings, stop)
    )


def main() -> None:
    """Run the review jobs until SIGTERM."""
    run_process(SERVICE, serve)


if __name__ == "__main__":
    main()
