"""One run, one trace: the gateway's `POST /api/pipeline/run` span is the ancestor of every
Kafka hop, ingest -> rules -> pricing -> reporting, parent to child, seen by an in-memory exporter.

The gateway and the four workers run in this process on the real broker and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common.tracing import setup_tracing
from services.gateway.app import create_app
from services.gateway.db import asyncpg_dsn, migrate
from services.gateway.projector.main import project
from services.gateway.settings import GatewaySettings
from services.ingest.main import build_app as build_ingest
from services.ingest.settings import IngestSettings
from services.pricing.main import build_app as build_pricing
from services.pricing.settings import PricingSettings
from services.reporting.main import build_app as build_reporting
from services.reporting.settings import ReportingSettings
from services.rules.main import build_app as build_rules
from services.rules.settings import RulesSettings
from tests.paths import GOLDEN

pytestmark = pytest.mark.integration

GOLDEN_TAPE = GOLDEN / "csv" / "tape.csv"
PASSWORD = "trace chain password"
HOPS = ("runs.v1", "loans.ingested.v1", "loans.evaluated.v1", "loans.priced.v1")


@pytest.fixture(scope="module")
async def chain_database(database_url: str) -> AsyncIterator[str]:
    """A database of this module's own (gateway and reporting schemas)."""
    name = f"test_trace_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield f"{database_url.rpartition('/')[0]}/{name}"
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """An in-memory exporter on the process's (global) tracer provider."""
    spans = InMemorySpanExporter()
    setup_tracing(GatewaySettings(environment="test"), exporter=spans)
    return spans


@pytest.fixture(scope="module")
async def pipeline(
    chain_database: str,
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
    exporter: InMemorySpanExporter,  # noqa: ARG001 - spans must be exported from the start
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway (as an HTTP client) with ingest, rules, pricing and reporting running."""
    root = tmp_path_factory.mktemp("trace-chain")
    tag = uuid.uuid4().hex[:8]
    shared: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka_bootstrap_servers,
        "topic_prefix": module_topic_prefix,
        "database_url": chain_database,
        "storage_type": "local",
        "storage_root": root / "storage",
        "environment": "test",
    }
    gateway_settings = GatewaySettings(
        **shared,
        jwt_secret="trace-chain-secret-key-with-enough-length",  # type: ignore[arg-type]
        admin_username="tracer",
        admin_password=PASSWORD,  # type: ignore[arg-type]
    )
    await migrate(gateway_settings)
    workers = (
        build_ingest(IngestSettings(**shared, state_dir=root / "ingest", loan_batch_size=50)),
        build_rules(RulesSettings(**shared, consumer_group=f"rules-{tag}")),
        build_pricing(PricingSettings(**shared, consumer_group=f"pricing-{tag}")),
        build_reporting(
            ReportingSettings(
                **shared, priced_group=f"reporting-{tag}", runs_group=f"reporting-runs-{tag}"
            )
        ),
    )
    app = create_app(gateway_settings)
    async with AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(
                LifespanManager(worker, startup_timeout=90, shutdown_timeout=30)
            )
        await stack.enter_async_context(LifespanManager(app))
        stop = asyncio.Event()
        projector = asyncio.create_task(project(gateway_settings, stop))
        stack.push_async_callback(lambda: projector)
        stack.callback(stop.set)
        await app.state.storage.put_bytes("inputs/traced/tape.csv", GOLDEN_TAPE.read_bytes())
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60)
        await stack.enter_async_context(client)
        yield client


def trace_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def ancestry(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The names of a span and its ancestors, nearest first, as far as the trace reaches."""
    names = [span.name]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_run_is_one_trace_from_the_http_request_through_every_kafka_hop(
    pipeline: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    login = await pipeline.post(
        "/api/auth/login", data={"username": "tracer", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    response = await pipeline.post(
        "/api/pipeline/run",
        json={"pdate": "2026-11-23", "irr_target": "8.05", "folder": "traced"},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    [request_span] = [
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.name == "POST /api/pipeline/run"
    ]
    trace_id = request_span.context.trace_id

    async with asyncio.timeout(120):
        while not {"loans.priced.v1 process", "projector write"} <= {
            s.name for s in trace_of(exporter, trace_id)
        }:
            await asyncio.sleep(0.5)
        # Reporting completes the run on the last priced batch: wait for its span to end too.
        await asyncio.sleep(2)
    spans = trace_of(exporter, trace_id)
    by_id = {s.context.span_id: s for s in spans}
    names = {s.name for s in spans}
    for hop in HOPS:
        assert f"{hop} process" in names, sorted(names)
    priced = next(s for s in spans if s.name == "loans.priced.v1 process")
    chain = ancestry(priced, by_id)
    assert chain[-1] == "POST /api/pipeline/run"
    # Each hop is the child of the hop before it, not of the first span of the trace.
    hop_names = [name for name in reversed(chain) if name.endswith(" process")]
    assert hop_names == [f"{hop} process" for hop in HOPS]
    assert all(s.kind == SpanKind.CONSUMER for s in spans if s.name.endswith(" process"))
    # The projector's chunk spans join the run's trace at the last hop: the read models.
    projected = [s for s in spans if s.name == "projector write"]
    assert projected
    assert all(ancestry(s, by_id)[-1] == "POST /api/pipeline/run" for s in projected)
