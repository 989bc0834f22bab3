"""The gateway's FastAPI app: every router under `/api`, errors in one handler, health outside."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.common.health import (
    ReadyCheck,
    database_ready,
    kafka_ready,
    run_checks,
    storage_ready,
)
from services.common.metrics import HttpMetricsMiddleware, metrics_endpoint
from services.common.storage import Storage, storage_from_settings
from services.common.tracing import fastapi_telemetry, setup_tracing
from services.gateway.admin import ops as admin_ops
from services.gateway.admin import routes as admin
from services.gateway.audit import routes as audit
from services.gateway.audit.middleware import AuditMiddleware
from services.gateway.db import make_engine
from services.gateway.deps import Publisher, get_authentication, require_roles
from services.gateway.error_docs import install_error_docs
from services.gateway.errors import install_error_handlers
from services.gateway.facts import routes as facts
from services.gateway.files import routes as files
from services.gateway.governance.routers import GOVERNANCE_ROUTERS
from services.gateway.identity import routes as auth
from services.gateway.identity.service import bootstrap_admin
from services.gateway.meta import routes as meta
from services.gateway.middleware import (
    MULTIPART_OVERHEAD,
    BodyLimitMiddleware,
    RequestIdMiddleware,
)
from services.gateway.ml import routes as ml
from services.gateway.notifications import routes as notifications
from services.gateway.publisher import LazyPublisher
from services.gateway.ratelimit import RateLimitMiddleware
from services.gateway.review import routes as review
from services.gateway.review.jobs import ReviewJobs
from services.gateway.runs import outputs, pipeline, summary
from services.gateway.runs import routes as runs
from services.gateway.security import SecurityHeadersMiddleware
from services.gateway.settings import GatewaySettings
from services.gateway.triage import routes as triage

logger = logging.getLogger(__name__)

API_PREFIX = "/api"
# The workbench (web/, SPEC §9), built by `npm run build` into web/dist and served at `/`.
WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
# The workbench loads only its own scripts, styles and API: no inline code, nothing third-party.
WEB_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
WEB_MISSING = (
    "<!doctype html><title>Loan Engine</title><h1>Loan Engine gateway</h1>"
    "<p>The web workbench is not built. Build it with <code>scripts/bootstrap</code> "
    "(or <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>); the API is under "
    "<code>/api</code>, its documentation at <a href=/docs>/docs</a>.</p>"
)


def mount_workbench(app: FastAPI, dist: Path = WEB_DIST) -> None:
    """Serve the built workbench at `/` (its assets under `/assets`), or say how to build it."""
    headers = {"Content-Security-Policy": WEB_CSP}
    index = dist / "index.html"

    @app.get("/", include_in_schema=False)
    async def workbench() -> Response:
        if index.is_file():
            return FileResponse(index, headers=headers)
        return HTMLResponse(WEB_MISSING, headers=headers)

    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")


def api_router(admin_routers: Sequence[APIRouter] = ()) -> APIRouter:
    """Every resource router; admin routers (diagnostics and any extra) under `/admin`, admins
    only."""
    router = APIRouter(prefix=API_PREFIX)
    for module in (auth, pipeline, runs, outputs, summary, facts, triage, meta, files, admin):
        router.include_router(module.router)
    for governance in GOVERNANCE_ROUTERS:
        router.include_router(governance)
    router.include_router(review.router)
    router.include_router(ml.router)
    router.include_router(notifications.router)
    for extra in (admin_ops.router, audit.router, *admin_routers):
        router.include_router(
            extra, prefix="/admin", dependencies=[Depends(require_roles("admin"))]
        )
    return router


def create_app(
    settings: GatewaySettings | None = None,
    *,
    storage: Storage | None = None,
    publisher: Publisher | None = None,
    admin_routers: Sequence[APIRouter] = (),
    ready_checks: Sequence[ReadyCheck] = (),
) -> FastAPI:
    """The gateway app; storage and publisher default to those the settings name."""
    config = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(config)
        app.state.settings = config
        app.state.engine = engine
        app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        app.state.read_sessionmaker = async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        app.state.storage = storage or storage_from_settings(config)
        own_publisher = publisher is None
        app.state.publisher = publisher or LazyPublisher(config)
        try:
            async with app.state.sessionmaker() as session:
                if await bootstrap_admin(session, config):
                    logger.info("first admin created", extra={"username": config.admin_username})
        except Exception as error:
            # The API still serves (and /health/ready says why) when the database is not ready.
            logger.error("admin bootstrap failed", extra={"error": type(error).__name__})
        # The review jobs run in a process of their own (review/main.py); in this one only when
        # asked (a single-process deployment): batch work on the event loop delays requests.
        jobs_stop = asyncio.Event()
        jobs = None
        app.state.review_jobs = None
        if config.review_jobs_enabled:
            app.state.review_jobs = ReviewJobs(app.state.sessionmaker, app.state.publisher, config)
            jobs = asyncio.create_task(app.state.review_jobs.run(jobs_stop))
        try:
            yield
        finally:
            jobs_stop.set()
            if jobs is not None:
                await jobs
            if own_publisher:
                await app.state.publisher.stop()
            await engine.dispose()

    app = FastAPI(
        title="Loan Engine gateway",
        version="1.0.0",
        description="Runs, loans, exceptions, reports and files of Loan Engine (SPEC §4).",
        lifespan=lifespan,
        telemetry=fastapi_telemetry(setup_tracing(config)),
    )
    install_error_handlers(app)
    app.include_router(api_router(admin_routers))
    install_error_docs(app, get_authentication)
    mount_workbench(app)

    @app.get("/health", include_in_schema=False)
    async def alive() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", include_in_schema=False)
    async def ready(request: Request) -> JSONResponse:
        checks = (
            database_ready(request.app.state.engine),
            kafka_ready(config),
            storage_ready(request.app.state.storage),
            *ready_checks,
        )
        readiness = await run_checks(checks)
        return JSONResponse(readiness.as_json(), 200 if readiness.ready else 503)

    # Plain routes: `/metrics` answers itself, no redirect (`/metrics/` kept for old scrapers).
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.add_route("/metrics/", metrics_endpoint, include_in_schema=False)
    # Added innermost first; outermost first they are: security headers, request id, metrics,
    # rate limits, body limits, audit (innermost: it reads the route FastAPI matched).
    app.add_middleware(AuditMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=config.max_body_bytes,
        path_limits={
            f"{API_PREFIX}/files/upload": config.upload_max_bytes + MULTIPART_OVERHEAD,
        },
    )
    if config.rate_limited:
        app.add_middleware(RateLimitMiddleware, settings=config)
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    # Outermost, so even the last-resort 500 of RequestIdMiddleware carries the headers.
    app.add_middleware(SecurityHeadersMiddleware, hsts_seconds=config.hsts_seconds)
    return app
