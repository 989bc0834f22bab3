"""Metrics and traces through a real broker, scraped and queried by a real Prometheus."""

import asyncio
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import yaml
from aiokafka import TopicPartition
from fastapi import FastAPI
from faststream.kafka import KafkaBroker, TestKafkaBroker
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import start_http_server

from contracts.loans import LoanException
from contracts.topics import ALL_TOPICS
from services.cli.stack.topics import delete_topics, ensure_topics
from services.common import governance_metrics, metrics
from services.common.metrics import REGISTRY, EventMetricsMiddleware, HttpMetricsMiddleware
from services.common.settings import ServiceSettings
from services.common.tracing import KafkaTracingMiddleware, setup_tracing, start_span
from tests.net import free_port, stop
from tests.unit.observability.fakes import FakeConsumer
from tests.unit.observability.monitoring_files import (
    ALERT_RULES,
    PROMETHEUS_CONFIG,
    alert_rules,
    dashboard_queries,
    load_yaml,
    required_tool,
    substitute_grafana_variables,
)

pytestmark = pytest.mark.integration


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def finished_span(
    exporter: InMemorySpanExporter, name: str, timeout: float = 10
) -> ReadableSpan:
    """A span by name, once it has ended (a handler's span ends just after its handler)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for span in exporter.get_finished_spans():
            if span.name == name:
                return span
        await asyncio.sleep(0.05)
    raise AssertionError(f"no finished span {name!r}")


async def test_a_trace_and_the_metrics_follow_a_batch_through_the_real_broker(
    kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    service = f"it-{uuid4().hex[:8]}"
    # Topics of its own: the session's loan topics also carry other tests' batches and spans.
    topic_prefix = f"{topic_prefix}{service}."
    await ensure_topics(kafka_bootstrap_servers, topic_prefix)
    settings = ServiceSettings(service_name=service, otel_exporter_otlp_endpoint=None)
    exporter = InMemorySpanExporter()
    provider = setup_tracing(settings, exporter=exporter, set_global=False)
    broker = KafkaBroker(
        kafka_bootstrap_servers,
        middlewares=[
            EventMetricsMiddleware(service, topic_prefix=topic_prefix),
            KafkaTracingMiddleware(provider, topic_prefix=topic_prefix),
        ],
    )
    evaluated: list[int] = []
    batch_headers = {"loan-count": "500"}

    @broker.subscriber(
        f"{topic_prefix}loans.ingested.v1",
        group_id=f"{service}-rules",
        auto_offset_reset="earliest",
    )
    async def on_loans_ingested(body: dict[str, int]) -> None:
        """Evaluate the batch and pass it on."""
        await broker.publish(
            body,
            f"{topic_prefix}loans.evaluated.v1",
            key=b"run:7",
            headers={**batch_headers, "event-type": "loans.evaluated"},
        )

    @broker.subscriber(
        f"{topic_prefix}loans.evaluated.v1",
        group_id=f"{service}-pricing",
        auto_offset_reset="earliest",
    )
    async def on_loans_evaluated(body: dict[str, int]) -> None:
        """Note the batch arrived."""
        evaluated.append(body["batch_seq"])

    await broker.start()
    try:
        with start_span("POST /api/pipeline/run", tracer_provider=provider) as root:
            await broker.publish(
                {"batch_seq": 7},
                f"{topic_prefix}loans.ingested.v1",
                key=b"run:7",
                headers={**batch_headers, "event-type": "loans.ingested"},
            )
        rules = await finished_span(exporter, "loans.ingested.v1 process", timeout=60)
        pricing = await finished_span(exporter, "loans.evaluated.v1 process", timeout=30)
        lags = await metrics.record_consumer_lag(
            metrics.broker_consumers(broker), service, topic_prefix
        )
    finally:
        await broker.stop()
        await delete_topics(
            kafka_bootstrap_servers, [topic.physical(topic_prefix) for topic in ALL_TOPICS]
        )

    assert evaluated == [7]
    assert rules.context.trace_id == root.get_span_context().trace_id
    assert pricing.context.trace_id == root.get_span_context().trace_id
    assert rules.parent is not None and rules.parent.span_id == root.get_span_context().span_id
    assert pricing.parent is not None and pricing.parent.span_id == rules.context.span_id
    consumed = {"service": service, "topic": "loans.ingested.v1", "event_type": "loans.ingested"}
    assert value("loan_engine_events_consumed_total", **consumed) == 1
    produced = {"service": service, "topic": "loans.evaluated.v1", "event_type": "loans.evaluated"}
    assert value("loan_engine_events_produced_total", **produced) == 1
    assert value("loan_engine_loans_processed_total", service=service, stage=service) == 1000
    assert {topic for topic, _ in lags} == {"loans.ingested.v1", "loans.evaluated.v1"}
    assert len(lags) == 12  # every partition of both topics, each read to its end
    assert set(lags.values()) == {0}


async def exercise_the_kit(service: str) -> None:
    """Put a value behind every metric the dashboards read, through the kit's public API."""
    broker = KafkaBroker(middlewares=[EventMetricsMiddleware(service, topic_prefix="p.")])

    @broker.subscriber("p.loans.priced.v1")
    async def on_loans_priced(body: dict[str, int]) -> None:
        """Accept the batch."""

    async with TestKafkaBroker(broker):
        await broker.publish(
            {"n": 1},
            "p.loans.priced.v1",
            headers={"event-type": "loans.priced", "loan-count": "500"},
        )
    partition = TopicPartition("p.loans.priced.v1", 0)
    await metrics.record_consumer_lag(
        [FakeConsumer({partition: 3}, {partition: 10})], service, topic_prefix="p."
    )
    metrics.record_dispositions(["to_purchase", "rejected"])
    metrics.record_exceptions(
        [
            LoanException(
                exception_type="dti_ratio",
                category="credit",
                severity="hard",
                message="DTI ratio exceeds maximum of 50%",
                rejection_criteria="notebook.dti_exceeds_maximum",
            )
        ]
    )
    metrics.record_run("failed", 12.0)
    governance_metrics.record_dq_scores([Decimal("95.45"), Decimal("72.73")])
    governance_metrics.set_reconciliation_findings({"mismatched": 1})
    metrics.record_dead_letter(service, "loan-tapes.v1")
    metrics.record_projection_lag("loans.dispositioned.v1", int(time.time() * 1000) - 1500)

    app = FastAPI()

    @app.get("/api/runs/{run_id}")
    async def get_run(run_id: str) -> dict[str, str]:
        """One run."""
        return {"run_id": run_id}

    app.add_middleware(HttpMetricsMiddleware)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        await client.get("/api/runs/1")


@pytest.fixture
def metrics_port() -> Iterator[int]:
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def prometheus_url(tmp_path: Path, metrics_port: int) -> Iterator[str]:
    """A real Prometheus running the project's scrape config and alert rules, every job
    pointed at this test's metrics endpoint, scraping and evaluating every second."""
    binary = required_tool("prometheus")
    config: dict[str, Any] = load_yaml(PROMETHEUS_CONFIG)
    config["global"].update(
        {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    )
    config["rule_files"] = [str(ALERT_RULES)]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()


async def wait_until_ready(client: httpx.AsyncClient, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if (await client.get("/-/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("Prometheus did not become ready")


async def query_results(client: httpx.AsyncClient, queries: list[str]) -> dict[str, list[Any]]:
    results: dict[str, list[Any]] = {}
    for query in queries:
        response = await client.post("/api/v1/query", data={"query": query})
        assert response.status_code == 200, (query, response.text)
        results[query] = response.json()["data"]["result"]
    return results


async def test_prometheus_scrapes_the_kit_and_every_panel_and_alert_evaluates(
    prometheus_url: str,
) -> None:
    await exercise_the_kit(f"it-{uuid4().hex[:8]}")
    queries = sorted({substitute_grafana_variables(expr) for _, expr in dashboard_queries()})
    alert_names = {rule["alert"] for rule in alert_rules()}
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(base_url=prometheus_url, timeout=10) as client:
        await wait_until_ready(client, deadline)
        while True:
            results = await query_results(client, queries)
            empty = [query for query, result in results.items() if not result]
            rules = (await client.get("/api/v1/rules")).json()["data"]["groups"]
            health = {r["name"]: r["health"] for group in rules for r in group["rules"]}
            firing = {
                alert["labels"]["alertname"]
                for alert in (await client.get("/api/v1/alerts")).json()["data"]["alerts"]
            }
            settled = not empty and set(health.values()) == {"ok"}
            if settled and {"LoanEngineDeadLetters", "LoanEngineRunsFailed"} <= firing:
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    assert empty == [], "dashboard queries without data"
    assert set(health) == alert_names
    assert {name for name, state in health.items() if state != "ok"} == set()
    assert {"LoanEngineDeadLetters", "LoanEngineRunsFailed"} <= firing
