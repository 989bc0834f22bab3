"""Prometheus metrics of every Loan Engine process, defined once, with one-line helpers (SPEC §5).

Every metric lives in `REGISTRY` and is named `loan_engine_*`. FastStream's own
`KafkaPrometheusMiddleware` was evaluated and not reused: its series are keyed by handler and
message count only, while operators need events by `event_type` and loans from the `loan-count`
header, so `EventMetricsMiddleware` below records exactly the series the dashboards read.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from aiokafka import TopicPartition
from faststream import BaseMiddleware
from faststream.exceptions import IgnoredException
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    make_asgi_app,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.topics import DEAD_LETTERS, DEFAULT_PREFIX

logger = logging.getLogger(__name__)

# `_created` series double the series count and no dashboard or alert reads them.
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(namespace="loan_engine", registry=REGISTRY)

# A batch of 500 loans takes milliseconds to seconds; a whole run seconds to an hour.
HANDLER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
RUN_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

EVENTS_CONSUMED = Counter(
    "loan_engine_events_consumed_total",
    "Kafka records consumed, by service, logical topic and event type.",
    ["service", "topic", "event_type"],
    registry=REGISTRY,
)
EVENTS_PRODUCED = Counter(
    "loan_engine_events_produced_total",
    "Kafka records produced, by service, logical topic and event type.",
    ["service", "topic", "event_type"],
    registry=REGISTRY,
)
LOANS_PROCESSED = Counter(
    "loan_engine_loans_processed_total",
    "Loans processed inside batches, by service and pipeline stage.",
    ["service", "stage"],
    registry=REGISTRY,
)
HANDLER_DURATION = Histogram(
    "loan_engine_handler_duration_seconds",
    "Time to handle one Kafka record (one batch), publishing its output included.",
    ["service", "handler"],
    buckets=HANDLER_BUCKETS,
    registry=REGISTRY,
)
HANDLER_FAILURES = Counter(
    "loan_engine_handler_failures_total",
    "Handler invocations that raised, by exception class.",
    ["service", "handler", "error"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "loan_engine_consumer_lag",
    "Records not yet consumed: high-water mark minus position, per assigned partition.",
    ["service", "topic", "partition"],
    registry=REGISTRY,
)
DEAD_LETTERS_TOTAL = Counter(
    "loan_engine_dead_letters_total",
    "Messages set aside on the dead-letter topic, by service and original topic.",
    ["service", "topic"],
    registry=REGISTRY,
)
LOANS_DISPOSITIONED = Counter(
    "loan_engine_loans_dispositioned_total",
    "Loans given a final disposition.",
    ["disposition"],
    registry=REGISTRY,
)
EXCEPTIONS_TOTAL = Counter(
    "loan_engine_exceptions_total",
    "Validation and eligibility exceptions raised, by type and severity.",
    ["exception_type", "severity"],
    registry=REGISTRY,
)
RUNS_TOTAL = Counter(
    "loan_engine_runs_total",
    "Run lifecycle transitions, by status (requested, started, completed, failed).",
    ["status"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "loan_engine_run_duration_seconds",
    "Wall time from a run's start to its completion or failure.",
    buckets=RUN_BUCKETS,
    registry=REGISTRY,
)
TAPES_EXPIRED = Counter(
    "loan_engine_tapes_expired_total",
    "Producer tapes dropped because their end marker did not come within the TTL.",
    registry=REGISTRY,
)
RATE_LIMIT_UNCHECKED = Counter(
    "loan_engine_rate_limit_unchecked_requests_total",
    "API requests the gateway answered without rate limits because their storage did not answer.",
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "loan_engine_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "loan_engine_http_request_duration_seconds",
    "HTTP request latency by route template and method.",
    ["route", "method"],
    buckets=HTTP_BUCKETS,
    registry=REGISTRY,
)
GC_PAUSE = Histogram(
    "loan_engine_gc_pause_seconds",
    "Time the Python cyclic garbage collector held the process, by generation (0-2).",
    ["generation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
    registry=REGISTRY,
)
PROJECTION_LAG = Gauge(
    "loan_engine_projection_lag_seconds",
    "Age of the newest record the projector has applied, per logical topic.",
    ["topic"],
    registry=REGISTRY,
)

# Known label values start at zero, so `increase()` sees the first failed run or disposition.
for _status in ("requested", "started", "completed", "failed"):
    RUNS_TOTAL.labels(_status)
for _disposition in ("to_purchase", "projected", "rejected"):
    LOANS_DISPOSITIONED.labels(_disposition)


def time_collections() -> None:
    """Observe every collection's pause in `GC_PAUSE` (once per process; idempotent).

    A collection holds the GIL, so every request and batch in flight waits for it: when all
    answers of one moment are slow together, this says whether the collector was the cause."""
    if _gc_timer in gc.callbacks:
        return
    gc.callbacks.append(_gc_timer)


# One child per generation, looked up once: the callback must not take the histogram's own
# lock, which a scrape holds while copying its children (a copy that may start a collection).
_GC_PAUSES = tuple(GC_PAUSE.labels(str(generation)) for generation in range(3))
_gc_started = [0.0]


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
        return
    try:
        _GC_PAUSES[info["generation"]].observe(time.perf_counter() - _gc_started[0])
    except Exception:  # a collector callback that raises is reported on every collection
        logger.debug("gc pause not recorded", exc_info=True)


UNKNOWN = "unknown"
# A mounted metrics app answers `/metrics` with a redirect to `/metrics/`: neither is API traffic.
SCRAPE_PATHS = ("/metrics", "/metrics/")
UNMATCHED_ROUTE = "unmatched"
# The topic a handler is consuming, so a dead letter published from inside it names its origin.
_consuming_topic: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "loan_engine_consuming_topic", default=None
)


def exported_metric_names(registry: CollectorRegistry = REGISTRY) -> frozenset[str]:
    """Every series name the registry can expose (`_total`, `_bucket`, `_sum`, `_count` ...)."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
    }
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return frozenset(names)


def render_latest(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The text exposition of the registry and its content type, for a `/metrics` route."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


async def metrics_endpoint(_request: Request) -> Response:
    """A `/metrics` endpoint: `app.add_route("/metrics", metrics_endpoint)`."""
    body, content_type = render_latest()
    return Response(body, media_type=content_type)


def metrics_asgi_app(registry: CollectorRegistry = REGISTRY) -> ASGIApp:
    """An ASGI app serving `/metrics` (mount it, or route to it from a worker's HTTP port)."""
    return make_asgi_app(registry=registry)


def logical_topic(physical: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The registry name of a broker topic (`loan-engine.runs.v1` -> `runs.v1`)."""
    return physical[len(prefix) :] if prefix and physical.startswith(prefix) else physical


def record_consumed(service: str, topic: str, event_type: str, loans: int = 0) -> None:
    """Count one consumed record (and the loans it carries) outside the middleware."""
    EVENTS_CONSUMED.labels(service, topic, event_type).inc()
    if loans:
        LOANS_PROCESSED.labels(service, service).inc(loans)


def record_produced(service: str, topic: str, event_type: str, records: int = 1) -> None:
    """Count records published outside FastStream (e.g. through `KafkaPublisher`)."""
    EVENTS_PRODUCED.labels(service, topic, event_type).inc(records)


def record_loans_processed(service: str, stage: str, loans: int) -> None:
    """Count loans a stage finished that arrived without a `loan-count` header (tape rows)."""
    LOANS_PROCESSED.labels(service, stage).inc(loans)


def record_dead_letter(service: str, topic: str | None = None) -> None:
    """Count one dead letter; the topic defaults to the one the current handler consumes."""
    DEAD_LETTERS_TOTAL.labels(service, topic or _consuming_topic.get() or UNKNOWN).inc()


def record_dispositions(dispositions: Iterable[str]) -> None:
    """Count loans by disposition, e.g. `(e.disposition for e in batch.events)`."""
    for disposition, count in Tally(dispositions).items():
        LOANS_DISPOSITIONED.labels(disposition).inc(count)


def record_exceptions(exceptions: Iterable[Any]) -> None:
    """Count loan exceptions (anything with `exception_type` and `severity`)."""
    tally = Tally((e.exception_type, e.severity) for e in exceptions)
    for (exception_type, severity), count in tally.items():
        EXCEPTIONS_TOTAL.labels(exception_type, severity).inc(count)


def observe_batch(histogram: Histogram, amounts: Iterable[Decimal]) -> None:
    """Observe a batch of amounts with one increment per bucket and one to the sum, instead of
    a locked increment of each per amount (loan batches share few distinct scores). The bucket
    counts are those of observing one by one; the sum is the batch's exact Decimal total."""
    tally = Tally(amounts)
    if not tally:
        return
    # prometheus_client has no bulk observe: these are the values `Histogram.observe` updates.
    bounds: Sequence[float] = histogram._upper_bounds
    per_bucket = [0] * len(bounds)
    for amount, count in tally.items():
        value = float(amount)
        # The last bound is +Inf, so every amount falls in a bucket.
        per_bucket[next(i for i, bound in enumerate(bounds) if value <= bound)] += count
    histogram._raise_if_not_observable()
    histogram._sum.inc(float(sum(amount * count for amount, count in tally.items())))
    for bucket, count in zip(histogram._buckets, per_bucket, strict=True):
        if count:
            bucket.inc(count)


def record_run(status: str, duration_seconds: float | None = None) -> None:
    """Count a run transition; pass the duration when the run ends (completed or failed)."""
    RUNS_TOTAL.labels(status).inc()
    if duration_seconds is not None:
        RUN_DURATION.observe(max(duration_seconds, 0.0))


def record_tape_expired() -> None:
    """Count one producer tape expired without its end marker (ingest)."""
    TAPES_EXPIRED.inc()


def record_projection_lag(topic: str, record_timestamp_ms: int, now: float | None = None) -> None:
    """Set the projector's lag from the broker timestamp of the record it just applied."""
    current = time.time() if now is None else now
    PROJECTION_LAG.labels(topic).set(max(current - record_timestamp_ms / 1000, 0.0))


def header_text(headers: Iterable[tuple[str, bytes]] | None, name: str) -> str | None:
    """One header of a Kafka record as text, or None when absent."""
    for key, value in headers or ():
        if key == name:
            return value.decode(errors="replace") if value is not None else None
    return None


def event_type_of(body: Any, headers: Mapping[str, str] | None = None) -> str:
    """The event type of an outgoing message: header first, then the contract's own field."""
    if headers and headers.get("event-type"):
        return headers["event-type"]
    for attribute in ("event_type", "batch_type"):
        value = getattr(body, attribute, None)
        if isinstance(value, str):
            return value
    return UNKNOWN


def handler_error(exc: BaseException | None) -> BaseException | None:
    """The error a handler failed with, seen through FastStream's control-flow exceptions.

    `AckMessage` and its kin end processing without failing it, unless they carry a cause: the
    dead-letter middleware acknowledges a record it has set aside with `raise AckMessage() from
    error`, and that record did fail.
    """
    if isinstance(exc, IgnoredException):
        return exc.__cause__
    return exc


def loan_count(value: str | None) -> int:
    """The `loan-count` header as a number; a malformed header counts no loans."""
    try:
        return max(int(value), 0) if value else 0
    except ValueError:
        return 0


class _Scope(BaseMiddleware):
    """Per-message scope of `EventMetricsMiddleware`."""

    def __init__(self, msg: Any, /, *, context: Any, factory: EventMetricsMiddleware) -> None:
        super().__init__(msg, context=context)
        self.factory = factory
        self.topic: str | None = None
        self.loans = 0
        self.started = 0.0
        self.token: contextvars.Token[str | None] | None = None

    async def on_receive(self) -> None:
        if self.msg is None:  # a publisher-side scope: nothing was received
            return
        factory = self.factory
        records = self.msg if isinstance(self.msg, Sequence) else (self.msg,)
        self.topic = logical_topic(records[0].topic, factory.topic_prefix)
        factory.prime(self.topic)
        for record in records:
            event_type = header_text(record.headers, "event-type") or UNKNOWN
            EVENTS_CONSUMED.labels(factory.service, self.topic, event_type).inc()
            self.loans += loan_count(header_text(record.headers, "loan-count"))
        self.token = _consuming_topic.set(self.topic)
        self.started = time.perf_counter()

    async def after_processed(
        self,
        _exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        *_traceback: object,
    ) -> bool | None:
        if self.topic is None:
            return False
        factory = self.factory
        handler = factory.handler_name(self.context, self.topic)
        HANDLER_DURATION.labels(factory.service, handler).observe(
            time.perf_counter() - self.started
        )
        error = handler_error(exc_val)
        if error is None:
            if self.loans:
                LOANS_PROCESSED.labels(factory.service, factory.stage).inc(self.loans)
        else:
            HANDLER_FAILURES.labels(factory.service, handler, type(error).__name__).inc()
        if self.token is not None:
            _consuming_topic.reset(self.token)
        return False

    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        result = await call_next(cmd)
        factory = self.factory
        topic = logical_topic(cmd.destination, factory.topic_prefix)
        records = max(len(getattr(cmd, "batch_bodies", ()) or ()), 1)
        EVENTS_PRODUCED.labels(factory.service, topic, event_type_of(cmd.body, cmd.headers)).inc(
            records
        )
        if topic == DEAD_LETTERS.name:
            origin = getattr(cmd.body, "topic", None)
            origin_topic = logical_topic(origin, factory.topic_prefix) if origin else self.topic
            record_dead_letter(factory.service, origin_topic)
        return result


class EventMetricsMiddleware:
    """FastStream broker middleware: events in and out, loans, handler latency, dead letters.

    `KafkaBroker(..., middlewares=[EventMetricsMiddleware("rules", topic_prefix=prefix)])`.
    """

    def __init__(
        self, service: str, *, stage: str | None = None, topic_prefix: str = DEFAULT_PREFIX
    ) -> None:
        self.service = service
        self.stage = stage or service
        self.topic_prefix = topic_prefix
        self.primed: set[str] = set()

    def prime(self, topic: str) -> None:
        """Create this topic's dead-letter series at zero, so its first dead letter alerts."""
        if topic not in self.primed:
            self.primed.add(topic)
            DEAD_LETTERS_TOTAL.labels(self.service, topic)

    def __call__(self, msg: Any, /, *, context: Any) -> BaseMiddleware:
        return _Scope(msg, context=context, factory=self)

    @staticmethod
    def handler_name(context: Any, fallback: str) -> str:
        """The consuming handler's function name, or the topic when FastStream does not say."""
        subscriber = context.get_local("handler_") if context is not None else None
        names = [getattr(call, "name", None) for call in getattr(subscriber, "calls", None) or ()]
        return ",".join(name for name in names if isinstance(name, str)) or fallback


class LagSource(Protocol):
    """What lag needs from a consumer; aiokafka's `AIOKafkaConsumer` provides it."""

    def assignment(self) -> set[TopicPartition]: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...

    async def position(self, partition: TopicPartition) -> int: ...

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...


_reported_lag: dict[str, set[tuple[str, str]]] = {}


async def record_consumer_lag(
    consumers: Iterable[LagSource], service: str, topic_prefix: str = DEFAULT_PREFIX
) -> dict[tuple[str, int], int]:
    """Set `loan_engine_consumer_lag` for every assigned partition (high-water minus position).

    Partitions no longer assigned (after a rebalance) are dropped from the gauge.
    """
    lags: dict[tuple[str, int], int] = {}
    for consumer in consumers:
        assigned = sorted(consumer.assignment())
        unknown = [tp for tp in assigned if consumer.highwater(tp) is None]
        # Before its first fetch a consumer knows no high-water mark: ask the broker once.
        ends = await consumer.end_offsets(unknown) if unknown else {}
        for tp in assigned:
            highwater = consumer.highwater(tp)
            end = highwater if highwater is not None else ends.get(tp, 0)
            position = await consumer.position(tp)
            lags[(logical_topic(tp.topic, topic_prefix), tp.partition)] = max(end - position, 0)
    current = {(topic, str(partition)) for topic, partition in lags}
    for topic, partition in _reported_lag.get(service, set()) - current:
        CONSUMER_LAG.remove(service, topic, partition)
    for (topic, partition), lag in lags.items():
        CONSUMER_LAG.labels(service, topic, str(partition)).set(lag)
    _reported_lag[service] = current
    return lags


def broker_consumers(broker: Any) -> list[Any]:
    """The aiokafka consumers of a started FastStream Kafka broker's subscribers."""
    consumers: list[Any] = []
    for subscriber in broker.subscribers:
        group = getattr(subscriber, "consumer_subgroup", None) or [
            getattr(subscriber, "consumer", None)
        ]
        consumers.extend(c for c in group if c is not None and c not in consumers)
    return consumers


async def report_consumer_lag(
    consumers: Callable[[], Iterable[LagSource]],
    service: str,
    *,
    topic_prefix: str = DEFAULT_PREFIX,
    interval: float = 10.0,
) -> None:
    """Refresh the lag gauge every `interval` seconds until cancelled (run it as a task)."""
    while True:
        try:
            await record_consumer_lag(consumers(), service, topic_prefix)
        except Exception as error:  # a lag probe must never take a worker down
            logger.warning(
                "consumer lag probe failed",
                extra={"service": service, "error": type(error).__name__},
            )
        await asyncio.sleep(interval)


class HttpMetricsMiddleware:
    """Pure ASGI middleware: requests and latency by route template, method and status."""

    def __init__(self, app: ASGIApp, excluded_paths: Sequence[str] = SCRAPE_PATHS) -> None:
        self.app = app
        self.excluded_paths = frozenset(excluded_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.excluded_paths:
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        status = 500
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = route_template(scope, root_path)
            method = scope.get("method", UNKNOWN)
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)


def route_template(scope: Scope, root_path: str = "") -> str:
    """The matched route's template (`/api/runs/{run_id}`), never the raw path."""
    route = scope.get("route") or _route_of_endpoint(scope)
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    # A mounted sub-application's routes are relative to its mount point.
    mount = scope.get("root_path", "")[len(root_path) :]
    if isinstance(route, Mount):  # matched a mount whose app is not a router (static files)
        return f"{mount}/*"
    return f"{mount}{path}" or "/"


def _route_of_endpoint(scope: Scope) -> Any:
    # FastAPI's router records the matched route only for its own API routes; find the others
    # (`add_route`, mounts) by the endpoint the match put in the scope.
    endpoint = scope.get("endpoint")
    if endpoint is None:
        return None
    for route in getattr(scope.get("router"), "routes", ()):
        if getattr(route, "endpoint", None) is endpoint or getattr(route, "app", None) is endpoint:
            return route
    return None
