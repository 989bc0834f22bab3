"""OpenTelemetry traces that follow a run across HTTP and every Kafka hop (SPEC §5).

W3C trace context travels in Kafka headers. One span per Kafka record, and a record is a batch of
up to LOAN_BATCH_SIZE loans, so a million-loan run is a few thousand spans, not millions; the
parent-based ratio sampler decides once, at a trace's root, so a run is kept or dropped whole.

FastStream's `KafkaTelemetryMiddleware` was evaluated and not reused: a handler's return-value
publish carries the *incoming* context, so every hop hangs off the first span instead of the hop
before it, and it adds a `create` span per record. `KafkaTracingMiddleware` chains hops
parent to child with one span per record. On HTTP, FastAPI's native telemetry already makes the
request span (`fastapi_telemetry`), so nothing here duplicates it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi.telemetry import TelemetryConfig
from faststream import BaseMiddleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from contracts.topics import DEFAULT_PREFIX, LOAN_TAPES, LOAN_TOPICS, RUNS
from services.common.metrics import (
    SCRAPE_PATHS,
    handler_error,
    header_text,
    loan_count,
    logical_topic,
)
from services.common.settings import ServiceSettings

KafkaHeaders = Sequence[tuple[str, bytes]]
TRACEPARENT = "traceparent"
INSTRUMENTATION = "loan_engine"
# Topics whose keys start with the run id: `{run_id}` or `{run_id}:{batch_seq}`.
RUN_KEYED_TOPICS = frozenset({RUNS.name, *(topic.name for topic in LOAN_TOPICS)})
MAX_BATCH_LINKS = 32
_propagator = TraceContextTextMapPropagator()


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a collector base endpoint (`http://otel:4318`)."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def setup_tracing(
    settings: ServiceSettings,
    *,
    exporter: SpanExporter | None = None,
    set_global: bool = True,
) -> TracerProvider:
    """The process's tracer provider: OTLP/HTTP when configured, plus `exporter` when given.

    The first call makes it the global provider; later calls return that same provider (adding
    their `exporter`), so services started in one test process share it and one in-memory
    exporter sees every hop. `set_global=False` builds a private provider instead.
    """
    current = trace.get_tracer_provider()
    if set_global and isinstance(current, TracerProvider):
        if exporter is not None:
            current.add_span_processor(SimpleSpanProcessor(exporter))
        return current
    ratio = min(max(settings.otel_sample_ratio, 0.0), 1.0)
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": settings.service_name, "deployment.environment": settings.environment}
        ),
        sampler=ParentBased(TraceIdRatioBased(ratio)),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if settings.otel_exporter_otlp_endpoint:
        otlp = OTLPSpanExporter(endpoint=otlp_traces_url(settings.otel_exporter_otlp_endpoint))
        # A large queue absorbs the burst of batch spans a big run emits; overflow is dropped.
        provider.add_span_processor(
            BatchSpanProcessor(otlp, max_queue_size=16384, max_export_batch_size=1024)
        )
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def install_in_memory_exporter(provider: TracerProvider) -> InMemorySpanExporter:
    """Attach an in-memory exporter to a provider and return it (tests read finished spans)."""
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def shutdown_tracing(provider: TracerProvider) -> None:
    """Flush pending spans and stop the exporters (call on shutdown)."""
    provider.shutdown()


def get_tracer(provider: trace.TracerProvider | None = None) -> Tracer:
    """Loan Engine's tracer from a provider, or from the global one."""
    return trace.get_tracer(INSTRUMENTATION, tracer_provider=provider)


def _as_text_mapping(headers: Mapping[str, str] | KafkaHeaders | None) -> dict[str, str]:
    if headers is None:
        return {}
    if isinstance(headers, Mapping):
        return dict(headers)
    return {
        key: value.decode(errors="replace") for key, value in headers if isinstance(value, bytes)
    }


def extract_context(headers: Mapping[str, str] | KafkaHeaders | None) -> Context:
    """The trace context carried by headers, as a str mapping or aiokafka's (name, bytes) list."""
    return _propagator.extract(_as_text_mapping(headers))


def inject_headers(
    headers: Mapping[str, str] | None = None, context: Context | None = None
) -> dict[str, str]:
    """A copy of `headers` with the current (or given) trace context added, for `KafkaPublisher`."""
    carrier = dict(headers or {})
    _propagator.inject(carrier, context=context)
    return carrier


def inject_kafka_headers(
    headers: KafkaHeaders | None = None, context: Context | None = None
) -> list[tuple[str, bytes]]:
    """Kafka record headers with the current (or given) trace context added."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context)
    kept = [(key, value) for key, value in headers or () if key not in carrier]
    return kept + [(key, value.encode()) for key, value in carrier.items()]


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits (for logs), or None outside a trace."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


@contextmanager
def start_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    attributes: Mapping[str, Any] | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[Span]:
    """A current span under `parent` (default: the current context); errors mark it failed."""
    tracer = get_tracer(tracer_provider)
    with tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {})
    ) as span:
        yield span


@contextmanager
def consumer_span(
    name: str,
    headers: Mapping[str, str] | KafkaHeaders | None,
    *,
    attributes: Mapping[str, Any] | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[Span]:
    """A current CONSUMER span, child of the context a record's headers carry."""
    with start_span(
        name,
        kind=SpanKind.CONSUMER,
        parent=extract_context(headers),
        attributes=attributes,
        tracer_provider=tracer_provider,
    ) as span:
        yield span


MAX_LINKS = 32


@contextmanager
def chunk_span(
    name: str,
    headers_of_records: Sequence[Mapping[str, str] | KafkaHeaders | None],
    *,
    attributes: Mapping[str, Any] | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> Iterator[Span]:
    """One CONSUMER span for records handled together (the projector's chunk).

    Its parent is the first traced record's context, so that run's trace reaches this hop; the
    other traces in the chunk are linked (at most MAX_LINKS), never given a span each.
    """
    contexts = []
    seen: set[int] = set()
    for headers in headers_of_records:
        span_context = trace.get_current_span(extract_context(headers)).get_span_context()
        if span_context.is_valid and span_context.trace_id not in seen:
            seen.add(span_context.trace_id)
            contexts.append(span_context)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(contexts[0])) if contexts else None
    links = [Link(context) for context in contexts[1 : MAX_LINKS + 1]]
    tracer = get_tracer(tracer_provider)
    with tracer.start_as_current_span(
        name,
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={**(attributes or {}), "messaging.batch.message_count": len(headers_of_records)},
    ) as span:
        yield span


def record_attributes(record: Any, topic: str, records: int) -> dict[str, Any]:
    """Span attributes of a consumed Kafka record (the first of a poll when several)."""
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
    }
    if records > 1:
        attributes["messaging.batch.message_count"] = records
    key = record.key.decode(errors="replace") if isinstance(record.key, bytes) else record.key
    if key:
        attributes["messaging.kafka.message.key"] = key
        if topic in RUN_KEYED_TOPICS:
            attributes["loan_engine.run_id"] = key.split(":", 1)[0]
    if event_type := header_text(record.headers, "event-type"):
        attributes["loan_engine.event_type"] = event_type
    if loans := loan_count(header_text(record.headers, "loan-count")):
        attributes["loan_engine.loan_count"] = loans
    return attributes


class _TracingScope(BaseMiddleware):
    """Per-message scope of `KafkaTracingMiddleware`."""

    def __init__(self, msg: Any, /, *, context: Any, factory: KafkaTracingMiddleware) -> None:
        super().__init__(msg, context=context)
        self.factory = factory
        self.span: Span | None = None
        self.token: object | None = None

    async def on_receive(self) -> None:
        if self.msg is None:  # a publisher-side scope: nothing was received
            return
        factory = self.factory
        records = self.msg if isinstance(self.msg, Sequence) else (self.msg,)
        topic = logical_topic(records[0].topic, factory.topic_prefix)
        parent = extract_context(records[0].headers)
        if topic in factory.untraced_topics:
            # Row-per-record topics get no span, but keep a producer's trace for what follows.
            self.token = otel_context.attach(parent)
            return
        links: list[Link] = []
        for record in records[1 : 1 + MAX_BATCH_LINKS]:
            linked = trace.get_current_span(extract_context(record.headers)).get_span_context()
            if linked.is_valid:
                links.append(Link(linked))
        self.span = factory.tracer.start_span(
            f"{topic} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={**record_attributes(records[0], topic, len(records)), **factory.attributes},
            links=links or None,
        )
        self.token = otel_context.attach(trace.set_span_in_context(self.span, parent))

    async def after_processed(
        self,
        _exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        *_traceback: object,
    ) -> bool | None:
        if self.span is not None:
            if (error := handler_error(exc_val)) is not None:
                self.span.record_exception(error)
                self.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            self.span.end()
        if self.token is not None:
            otel_context.detach(self.token)
        return False

    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        if cmd.headers is None:
            cmd.headers = {}
        if TRACEPARENT in cmd.headers:  # the caller propagated a context explicitly
            return await call_next(cmd)
        if trace.get_current_span().get_span_context().is_valid:
            _propagator.inject(cmd.headers)
            return await call_next(cmd)
        # A publish outside any trace starts one (a CLI or scheduler publishing a run request).
        topic = logical_topic(cmd.destination, self.factory.topic_prefix)
        with self.factory.tracer.start_as_current_span(
            f"{topic} publish",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                **self.factory.attributes,
            },
        ):
            _propagator.inject(cmd.headers)
            return await call_next(cmd)


class KafkaTracingMiddleware:
    """FastStream broker middleware: one CONSUMER span per record, context into every publish.

    `KafkaBroker(..., middlewares=[KafkaTracingMiddleware(provider, topic_prefix=prefix)])`.
    `untraced_topics` (default the producers' tape rows, one record per loan) get no span.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        service: str | None = None,
        topic_prefix: str = DEFAULT_PREFIX,
        untraced_topics: Sequence[str] = (LOAN_TAPES.name,),
    ) -> None:
        self.tracer = get_tracer(tracer_provider)
        # Names the hop even when several services share one provider (tests in one process).
        self.attributes = {"loan_engine.service": service} if service else {}
        self.topic_prefix = topic_prefix
        self.untraced_topics = frozenset(untraced_topics)

    def __call__(self, msg: Any, /, *, context: Any) -> BaseMiddleware:
        return _TracingScope(msg, context=context, factory=self)


def fastapi_telemetry(
    tracer_provider: trace.TracerProvider,
    excluded_paths: Sequence[str] = (*SCRAPE_PATHS, "/health", "/health/ready"),
) -> TelemetryConfig:
    """FastAPI's native request tracing, for `FastAPI(telemetry=fastapi_telemetry(provider))`.

    It extracts an incoming `traceparent`, names the SERVER span after the route template and
    keeps it current while the endpoint runs, so what the endpoint publishes joins its trace.
    Metrics stay with Prometheus (`HttpMetricsMiddleware`); probes and scrapes are not traced.
    """
    excluded = frozenset(excluded_paths)
    return {
        "tracer_provider": tracer_provider,
        "tracing": True,
        "metrics": False,
        "logs": False,
        # One span per request, as one per batch on Kafka: dependency and serialisation spans
        # would multiply the spans of every API call.
        "operation_spans": False,
        "auto_configure": False,
        "exclude": lambda scope: scope.get("path") in excluded,
    }
