"""The worker runtime: one broker, one ASGI app with health and metrics, one uvicorn server.

`python -m services.<name>.main` builds these three and calls `serve`; uvicorn turns SIGTERM into
a lifespan shutdown, which stops the subscribers (in-flight messages finish and are committed)
and closes the broker before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.kafka import KafkaBroker, KafkaResponse
from faststream.kafka.publisher.state import RealProducer
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from contracts.codec import dumps, encode
from contracts.ids import batch_key
from contracts.topics import Topic
from services.common.commits import flush_all
from services.common.consumer import RetryPolicy, settle_heap
from services.common.dead_letters import (
    DeadLetterMiddleware,
    broker_publisher,
    broker_run_failer,
)
from services.common.health import (
    ReadyCheck,
    broker_ready,
    kafka_ready,
    producer_ready,
    run_checks,
)
from services.common.kafka import (
    MAX_REQUEST_BYTES,
    Headers,
    ProducerRenewal,
    batch_headers,
    use_zstd_level,
)
from services.common.metrics import REGISTRY, EventMetricsMiddleware, metrics_asgi_app
from services.common.settings import ServiceSettings
from services.common.tracing import KafkaTracingMiddleware, setup_tracing, shutdown_tracing

logger = logging.getLogger(__name__)

GRACEFUL_TIMEOUT_SECONDS = 30.0
STARTUP_ATTEMPTS = 30


def make_broker(
    settings: ServiceSettings,
    *,
    tracer_provider: TracerProvider | None = None,
    retry_policy: RetryPolicy = RetryPolicy(),
    linger_ms: int = 5,
) -> KafkaBroker:
    """A FastStream Kafka broker for one service: durable idempotent producer, metrics, traces
    and the dead-letter middleware on every subscriber.

    Middlewares, outermost first: tracing (one span per record), event metrics, dead letters
    (innermost, so retries and dead-lettering happen inside the span and are counted once).

    `linger_ms`: how long the producer holds a record for others to join its request. A worker
    whose handlers wait for each output's acknowledgement (rules, pricing) gains nothing from it
    but the wait and the sender's extra wake-ups: 0 measured ~0.3 ms less CPU per record
    (`benchmarks/records.py`).
    """
    use_zstd_level(settings.kafka_zstd_level)
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        acks="all",
        enable_idempotence=True,
        compression_type=settings.compression_type,
        max_request_size=MAX_REQUEST_BYTES,
        linger_ms=linger_ms,
        # Topics are created from the registry with their partitions and retention; a
        # subscriber must never create one with broker defaults.
        allow_auto_create_topics=False,
        graceful_timeout=GRACEFUL_TIMEOUT_SECONDS,
        middlewares=(
            KafkaTracingMiddleware(tracer_provider, topic_prefix=settings.topic_prefix),
            EventMetricsMiddleware(settings.service_name, topic_prefix=settings.topic_prefix),
        ),
        logger=logging.getLogger(f"loan_engine.{settings.service_name}.broker"),
        # FastStream's "Received" / "Processed" line per record: ~150 us of CPU per record at
        # INFO (`benchmarks/records.py --log-level INFO`), 4,000 lines per million loans per
        # worker. Records are counted by metrics and followed by traces; LOG_LEVEL=DEBUG shows them.
        log_level=logging.DEBUG,
    )
    broker.add_middleware(
        DeadLetterMiddleware(
            settings.service_name,
            broker_publisher(broker, settings),
            policy=retry_policy,
            fail_run=broker_run_failer(broker, settings),
            renewal=broker_renewal(broker, settings.service_name),
            max_failed_deliveries=settings.max_failed_deliveries,
        )
    )
    return broker


def broker_renewal(broker: KafkaBroker, name: str) -> ProducerRenewal:
    """The `ProducerRenewal` of a FastStream broker's producer (one per broker)."""
    renewal = getattr(broker, "_loan_engine_renewal", None)
    if isinstance(renewal, ProducerRenewal):
        return renewal
    fast_producer: Any = broker.config.broker_config.producer

    def current() -> AIOKafkaProducer | None:
        state = getattr(fast_producer, "_producer", None)
        return state.producer if state else None

    async def install(producer: AIOKafkaProducer) -> None:
        fast_producer._producer = RealProducer(producer)

    def build() -> AIOKafkaProducer:
        return AIOKafkaProducer(**broker._connection_kwargs)

    renewal = ProducerRenewal(current, install, build, name)
    broker._loan_engine_renewal = renewal  # type: ignore[attr-defined]
    return renewal


def utc_now() -> datetime:
    """The current time in UTC (handlers take a clock so tests can fix it)."""
    return datetime.now(UTC)


def batch_response(batch: Any) -> KafkaResponse:
    """A handler's output loan batch: encoded once, keyed `{run_id}:{batch_seq}`, with the
    `event-type` and `loan-count` headers `KafkaPublisher.publish_batch` sends."""
    return KafkaResponse(
        encode(batch),
        key=batch_key(batch.run_id, batch.batch_seq).encode(),
        headers=batch_headers(batch),
    )


class BrokerPublisher:
    """`KafkaPublisher`'s interface over a FastStream broker, so publishes from inside a handler
    carry its trace and are counted by its metrics (and reach subscribers under TestKafkaBroker)."""

    def __init__(self, broker: KafkaBroker, settings: ServiceSettings) -> None:
        self.broker = broker
        self.settings = settings

    async def publish(
        self, topic: Topic, key: str, event: BaseModel, headers: Headers | None = None
    ) -> None:
        """Publish one contract keyed `key` and wait for the broker's acknowledgement."""
        event_type = getattr(event, "event_type", None)
        merged = {**({"event-type": event_type} if event_type else {}), **(headers or {})}
        await self.broker.publish(
            encode(event), topic=self.settings.topic(topic), key=key.encode(), headers=merged
        )

    async def publish_batch(self, topic: Topic, batch: Any, headers: Headers | None = None) -> None:
        """Publish a loan batch keyed `{run_id}:{batch_seq}` with its count headers."""
        await self.publish(
            topic,
            batch_key(batch.run_id, batch.batch_seq),
            batch,
            {**batch_headers(batch), **(headers or {})},
        )


def _json(body: object, status_code: int = 200) -> AsgiResponse:
    return AsgiResponse(dumps(body), status_code, {"content-type": "application/json"})


def health_routes(
    checks: Sequence[ReadyCheck], registry: CollectorRegistry = REGISTRY
) -> list[tuple[str, Any]]:
    """`/health` (alive), `/health/ready` (every check; 503 naming what fails), `/metrics`."""

    @get(include_in_schema=False)
    async def alive(scope: Any) -> AsgiResponse:  # noqa: ARG001 - FastStream passes the scope
        """The process is up and serving."""
        return _json({"status": "ok"})

    @get(include_in_schema=False)
    async def ready(scope: Any) -> AsgiResponse:  # noqa: ARG001 - FastStream passes the scope
        """Every dependency answers; 503 names those that do not."""
        readiness = await run_checks(checks)
        return _json(readiness.as_json(), 200 if readiness.ready else 503)

    return [("/health", alive), ("/health/ready", ready), ("/metrics", metrics_asgi_app(registry))]


async def wait_until_ready(
    check: ReadyCheck, attempts: int = STARTUP_ATTEMPTS, policy: RetryPolicy = RetryPolicy()
) -> None:
    """Block until `check` passes, backing off exponentially; raise after `attempts` tries."""
    for attempt in range(1, attempts + 1):
        try:
            await check.check()
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            logger.warning(
                "dependency not ready, waiting",
                extra={"component": check.name, "attempt": attempt, "error": str(exc)},
            )
            await asyncio.sleep(policy.delay(attempt))


def build_worker_app(
    settings: ServiceSettings,
    broker: KafkaBroker,
    *,
    ready_checks: Sequence[ReadyCheck] = (),
    on_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
    registry: CollectorRegistry = REGISTRY,
) -> AsgiFastStream:
    """The worker's ASGI app: the broker's subscribers plus health and metrics routes.

    Startup waits (with back-off) for Kafka before the broker connects, so a worker started
    before its broker does not exit; the broker's own connection is always a readiness check.
    """
    checks = (
        broker_ready(broker),
        producer_ready(broker_renewal(broker, settings.service_name)),
        *ready_checks,
    )

    async def wait_for_kafka() -> None:
        await wait_until_ready(kafka_ready(settings))

    return AsgiFastStream(
        broker,
        asgi_routes=health_routes(checks, registry),
        on_startup=(wait_for_kafka, *on_startup),
        after_startup=(settle_heap,),
        # Offsets noted for a batched commit are committed before the subscribers stop.
        on_shutdown=(flush_all, *on_shutdown),
        logger=logging.getLogger(f"loan_engine.{settings.service_name}"),
    )


def serve(app: AsgiFastStream, settings: ServiceSettings) -> None:
    """Run the app under uvicorn on `settings.http_host:http_port` until SIGTERM or SIGINT.

    Tracing is set up here (OTLP export when configured): the brokers' tracers resolve the global
    provider lazily, so spans of every middleware built earlier are exported too.
    """
    provider = setup_tracing(settings)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        lifespan="on",
        # Logging is configured by services.common.logs; uvicorn must not replace it.
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(GRACEFUL_TIMEOUT_SECONDS),
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        shutdown_tracing(provider)
    if not server.started:
        logger.error("worker failed to start", extra={"service": settings.service_name})
        sys.exit(1)
