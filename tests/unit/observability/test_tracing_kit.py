"""Trace context across Kafka headers and HTTP, recorded by an in-memory exporter."""

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from faststream.exceptions import AckMessage
from faststream.kafka import KafkaBroker, TestKafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.common import tracing
from services.common.settings import ServiceSettings

PREFIX = "unit."
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
Traced = tuple[TracerProvider, InMemorySpanExporter]
Api = tuple[httpx.AsyncClient, list[dict[str, str]]]


def a_provider(ratio: float = 1.0) -> Traced:
    settings = ServiceSettings(
        service_name="rules", otel_sample_ratio=ratio, otel_exporter_otlp_endpoint=None
    )
    exporter = InMemorySpanExporter()
    return tracing.setup_tracing(settings, exporter=exporter, set_global=False), exporter


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.fixture
def provider() -> Traced:
    return a_provider()


def test_the_provider_names_the_service_in_its_resource() -> None:
    provider, _ = a_provider()
    assert provider.resource.attributes["service.name"] == "rules"


def test_the_otlp_endpoint_gets_the_traces_path_once() -> None:
    assert tracing.otlp_traces_url("http://otel:4318") == "http://otel:4318/v1/traces"
    assert tracing.otlp_traces_url("http://otel:4318/") == "http://otel:4318/v1/traces"
    assert tracing.otlp_traces_url("http://otel:4318/v1/traces") == "http://otel:4318/v1/traces"


def test_current_trace_id_is_none_outside_a_trace_and_hex_inside(provider: Traced) -> None:
    tracer_provider, _ = provider
    assert tracing.current_trace_id() is None
    with tracing.start_span("run", tracer_provider=tracer_provider) as span:
        assert tracing.current_trace_id() == format(span.get_span_context().trace_id, "032x")


def test_dict_headers_carry_the_current_span_to_a_consumer_span(provider: Traced) -> None:
    tracer_provider, exporter = provider
    with tracing.start_span("publish", tracer_provider=tracer_provider) as producer:
        headers = tracing.inject_headers({"event-type": "loans.evaluated"})
    assert headers["event-type"] == "loans.evaluated"
    with tracing.consumer_span("consume", headers, tracer_provider=tracer_provider):
        pass
    spans = by_name(exporter)
    assert spans["consume"].context.trace_id == producer.get_span_context().trace_id
    assert parent_id(spans["consume"]) == producer.get_span_context().span_id
    assert spans["consume"].kind is SpanKind.CONSUMER


def test_aiokafka_header_lists_round_trip_the_trace_context(provider: Traced) -> None:
    tracer_provider, exporter = provider
    stale = [("traceparent", TRACEPARENT.encode()), ("loan-count", b"500")]
    with tracing.start_span("publish", tracer_provider=tracer_provider) as producer:
        headers = tracing.inject_kafka_headers(stale)
    assert [name for name, _ in headers].count("traceparent") == 1
    assert ("loan-count", b"500") in headers
    with tracing.consumer_span("consume", headers, tracer_provider=tracer_provider):
        pass
    assert parent_id(by_name(exporter)["consume"]) == producer.get_span_context().span_id


def test_no_trace_context_means_no_traceparent_header() -> None:
    assert "traceparent" not in tracing.inject_headers({"a": "b"})
    assert tracing.inject_kafka_headers(None) == []


def test_a_zero_ratio_samples_no_new_trace_but_follows_a_sampled_parent() -> None:
    tracer_provider, exporter = a_provider(ratio=0.0)
    with tracing.start_span("root", tracer_provider=tracer_provider):
        pass
    assert exporter.get_finished_spans() == ()
    with tracing.consumer_span(
        "continued", {"traceparent": TRACEPARENT}, tracer_provider=tracer_provider
    ):
        pass
    assert [span.name for span in exporter.get_finished_spans()] == ["continued"]


async def test_a_trace_chains_every_kafka_hop_parent_to_child(provider: Traced) -> None:
    tracer_provider, exporter = provider
    broker = KafkaBroker(
        middlewares=[
            tracing.KafkaTracingMiddleware(tracer_provider, service="rules", topic_prefix=PREFIX)
        ]
    )

    @broker.subscriber(f"{PREFIX}loans.ingested.v1")
    @broker.publisher(f"{PREFIX}loans.evaluated.v1")
    async def on_loans_ingested(body: dict[str, int]) -> dict[str, int]:
        """Evaluate."""
        return body

    @broker.subscriber(f"{PREFIX}loans.evaluated.v1")
    async def on_loans_evaluated(body: dict[str, int]) -> None:
        """Price, by publishing explicitly from inside the handler."""
        await broker.publish(body, f"{PREFIX}loans.priced.v1")

    @broker.subscriber(f"{PREFIX}loans.priced.v1")
    async def on_loans_priced(body: dict[str, int]) -> None:
        """Report."""

    async with TestKafkaBroker(broker):
        with tracing.start_span("POST /api/pipeline/run", tracer_provider=tracer_provider) as root:
            await broker.publish(
                {"n": 1},
                f"{PREFIX}loans.ingested.v1",
                key=b"5b1e4a4c-0000-4000-8000-000000000001:7",
                headers={"event-type": "loans.ingested", "loan-count": "500"},
            )
    spans = by_name(exporter)
    ingest = spans["loans.ingested.v1 process"]
    rules = spans["loans.evaluated.v1 process"]
    pricing = spans["loans.priced.v1 process"]
    assert {s.context.trace_id for s in (ingest, rules, pricing)} == {
        root.get_span_context().trace_id
    }
    assert parent_id(ingest) == root.get_span_context().span_id
    assert parent_id(rules) == ingest.context.span_id
    assert parent_id(pricing) == rules.context.span_id
    assert len(exporter.get_finished_spans()) == 4  # one span per record, none per loan
    assert ingest.attributes["loan_engine.loan_count"] == 500
    assert ingest.attributes["loan_engine.run_id"] == "5b1e4a4c-0000-4000-8000-000000000001"
    assert rules.attributes["loan_engine.service"] == "rules"


async def test_a_batch_subscriber_gets_one_span_per_poll_linked_to_the_others(
    provider: Traced,
) -> None:
    tracer_provider, exporter = provider
    broker = KafkaBroker(
        middlewares=[tracing.KafkaTracingMiddleware(tracer_provider, topic_prefix=PREFIX)]
    )

    @broker.subscriber(f"{PREFIX}loans.dispositioned.v1", batch=True)
    async def on_dispositioned_batches(bodies: list[dict[str, int]]) -> None:
        """Project."""

    async with TestKafkaBroker(broker):
        await broker.publish_batch(
            {"n": 1},
            {"n": 2},
            {"n": 3},
            topic=f"{PREFIX}loans.dispositioned.v1",
            headers={"traceparent": TRACEPARENT},
        )
    (span,) = exporter.get_finished_spans()
    assert span.attributes["messaging.batch.message_count"] == 3
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert len(span.links) == 2


async def test_a_handler_error_marks_its_span_failed(provider: Traced) -> None:
    tracer_provider, exporter = provider
    broker = KafkaBroker(
        middlewares=[tracing.KafkaTracingMiddleware(tracer_provider, topic_prefix=PREFIX)]
    )

    @broker.subscriber(f"{PREFIX}runs.v1")
    async def on_run_event(body: dict[str, int]) -> None:
        """Fail."""
        raise LookupError(body)

    async with TestKafkaBroker(broker):
        with pytest.raises(LookupError):
            await broker.publish({"n": 1}, f"{PREFIX}runs.v1")
    span = by_name(exporter)["runs.v1 process"]
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


async def test_a_dead_lettered_record_shows_the_error_behind_its_acknowledgement(
    provider: Traced,
) -> None:
    tracer_provider, exporter = provider
    broker = KafkaBroker(
        middlewares=[tracing.KafkaTracingMiddleware(tracer_provider, topic_prefix=PREFIX)]
    )

    @broker.subscriber(f"{PREFIX}runs.v1")
    async def on_run_event(body: dict[str, int]) -> None:
        """Fail, then acknowledge as the dead-letter middleware does."""
        raise AckMessage() from ValueError(body)

    async with TestKafkaBroker(broker):
        with pytest.raises(AckMessage):  # TestKafkaBroker hands it back; a real broker acks
            await broker.publish({"n": 1}, f"{PREFIX}runs.v1")
    span = by_name(exporter)["runs.v1 process"]
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError"


async def test_a_publish_outside_any_trace_starts_it_with_a_producer_span(
    provider: Traced,
) -> None:
    tracer_provider, exporter = provider
    broker = KafkaBroker(
        middlewares=[tracing.KafkaTracingMiddleware(tracer_provider, topic_prefix=PREFIX)]
    )

    @broker.subscriber(f"{PREFIX}runs.v1")
    async def on_run_event(body: dict[str, int]) -> None:
        """Accept."""

    async with TestKafkaBroker(broker):
        await broker.publish({"n": 1}, f"{PREFIX}runs.v1")
    spans = by_name(exporter)
    producer = spans["runs.v1 publish"]
    assert producer.kind is SpanKind.PRODUCER
    assert parent_id(spans["runs.v1 process"]) == producer.context.span_id


async def test_tape_rows_get_no_span_but_keep_the_producers_trace(provider: Traced) -> None:
    tracer_provider, exporter = provider
    broker = KafkaBroker(
        middlewares=[tracing.KafkaTracingMiddleware(tracer_provider, topic_prefix=PREFIX)]
    )
    seen: list[tuple[int, str | None]] = []

    @broker.subscriber(f"{PREFIX}loan-tapes.v1")
    async def on_tape_message(body: dict[str, int]) -> None:
        """Note the trace the row belongs to."""
        seen.append((body["row"], tracing.current_trace_id()))

    async with TestKafkaBroker(broker):
        for row in range(3):
            await broker.publish(
                {"row": row}, f"{PREFIX}loan-tapes.v1", headers={"traceparent": TRACEPARENT}
            )
    assert exporter.get_finished_spans() == ()
    assert seen == [(row, "0af7651916cd43dd8448eb211c80319c") for row in range(3)]


@pytest.fixture
async def api(provider: Traced) -> AsyncIterator[Api]:
    tracer_provider, _ = provider
    app = FastAPI(telemetry=tracing.fastapi_telemetry(tracer_provider))
    published: list[dict[str, str]] = []

    @app.post("/api/pipeline/run/{folder}", status_code=202)
    async def request_run(folder: str) -> dict[str, str]:
        """Publish a run request, carrying the request's trace."""
        published.append(tracing.inject_headers({"event-type": "run.requested"}))
        return {"folder": folder}

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Alive."""
        return {"status": "ok"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client, published


async def test_an_http_request_span_is_the_parent_of_what_its_endpoint_publishes(
    provider: Traced, api: Api
) -> None:
    tracer_provider, exporter = provider
    client, published = api
    response = await client.post("/api/pipeline/run/2026-11", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 202
    (server,) = exporter.get_finished_spans()
    assert server.kind is SpanKind.SERVER
    assert server.name == "POST /api/pipeline/run/{folder}"
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    with tracing.consumer_span("run requested", published[0], tracer_provider=tracer_provider):
        pass
    assert parent_id(by_name(exporter)["run requested"]) == server.context.span_id


async def test_health_probes_are_not_traced(provider: Traced, api: Api) -> None:
    _, exporter = provider
    client, _ = api
    assert (await client.get("/health")).status_code == 200
    assert exporter.get_finished_spans() == ()


def test_a_provider_made_for_a_test_does_not_become_the_global_one() -> None:
    provider, _ = a_provider()
    assert trace.get_tracer_provider() is not provider


SHARED_PROVIDER_SCRIPT = """
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from services.common.settings import ServiceSettings
from services.common.tracing import setup_tracing, start_span

exporter = InMemorySpanExporter()
first = setup_tracing(ServiceSettings(service_name="e2e"), exporter=exporter)
ingest = setup_tracing(ServiceSettings(service_name="ingest"))
rules = setup_tracing(ServiceSettings(service_name="rules"))
with start_span("ingest hop", tracer_provider=ingest):
    with start_span("rules hop", tracer_provider=rules):
        pass
print(first is ingest is rules, sorted(s.name for s in exporter.get_finished_spans()))
"""


def test_services_set_up_in_one_process_share_the_first_provider_and_its_exporter() -> None:
    # In a child process: the global provider can be set once per process, never reset.
    result = subprocess.run(
        [sys.executable, "-c", SHARED_PROVIDER_SCRIPT],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True ['ingest hop', 'rules hop']"
