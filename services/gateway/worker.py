"""What the gateway's worker processes (the projector, the review jobs) share: a health server on
a port of their own (`/health`, `/health/ready`, `/metrics`) beside their work, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.consumer import settle_heap
from services.common.health import ReadyCheck, kafka_ready, run_checks
from services.common.logs import configure_logging
from services.common.metrics import metrics_endpoint
from services.common.tracing import setup_tracing, shutdown_tracing
from services.gateway.db import connect
from services.gateway.settings import GatewaySettings

Work = Callable[[asyncio.Event], Awaitable[None]]


def database_check(settings: GatewaySettings) -> ReadyCheck:
    """PostgreSQL answers on a connection of its own."""

    async def check() -> None:
        conn = await connect(settings)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    return ReadyCheck("database", check)


def health_app(settings: GatewaySettings) -> Starlette:
    """`/health`, `/health/ready` (broker, database; 503 naming what fails) and `/metrics`."""
    checks = (kafka_ready(settings), database_check(settings))

    async def alive(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> JSONResponse:
        readiness = await run_checks(checks)
        return JSONResponse(readiness.as_json(), 200 if readiness.ready else 503)

    # `/metrics` answers itself, no redirect to `/metrics/` (kept for old scrapers), as the API.
    return Starlette(
        routes=[
            Route("/health", alive),
            Route("/health/ready", ready),
            Route("/metrics", metrics_endpoint),
            Route("/metrics/", metrics_endpoint),
        ]
    )


async def serve_with_health(settings: GatewaySettings, port: int, work: Work) -> None:
    """Run `work(stop)` and the health server on `port` until SIGTERM or SIGINT sets `stop` (or
    the work ends by itself); the work finishes what it has in hand, then the server goes."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    config = uvicorn.Config(
        health_app(settings),
        host=settings.http_host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    # The work owns the signals: it stops first, then the health server goes.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    http = asyncio.create_task(server.serve())
    worker = asyncio.create_task(work(stop))
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({worker, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await worker
    finally:
        stopped.cancel()
        server.should_exit = True
        await http


def run_process(service_name: str, serve: Callable[[GatewaySettings], Awaitable[None]]) -> None:
    """A worker process's `main`: its settings, logging and tracing, the start-up heap frozen
    (collections then scan only what the work allocates), then `serve` until it returns."""
    settings = GatewaySettings(service_name=service_name)
    configure_logging(settings)
    provider = setup_tracing(settings)
    settle_heap()
    try:
        asyncio.run(serve(settings))
    finally:
        shutdown_tracing(provider)
