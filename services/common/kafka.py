"""Publishing to Kafka: one idempotent producer per process, contracts encoded in one place."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer, codec
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    ProducerClosed,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.record import default_records
from msgspec import Struct
from pydantic import BaseModel

from contracts.codec import encode
from contracts.ids import batch_key
from contracts.topics import Topic
from services.common.metrics import event_type_of, record_produced
from services.common.settings import ServiceSettings
from services.common.tracing import inject_headers

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 * 1024 * 1024
Headers = Mapping[str, str]
# How long a replaced producer may take to hand back its pending sends (they fail, and their
# senders send again through the new producer).
RETIRE_TIMEOUT_SECONDS = 5.0
# Sends through one KafkaPublisher.publish_raw call: a first failure replaces the producer.
SEND_ATTEMPTS = 3
# Errors raised before a record is queued: the producer's state is intact.
KEEPS_PRODUCER: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
)


def use_zstd_level(level: int) -> None:
    """Compress this process's zstd record batches at `level`.

    aiokafka always compresses zstd at level 3 (the broker's default) and has no setting for it.
    On loan batches level 1 is both cheaper and smaller (measured on 500-loan batches: 0.9-1.0
    against 1.2-1.5 us per loan, 45.5 against 49.1 kB for an ingested batch); the records'
    values, and so every consumer's input, are the same at any level. Process-wide, like the
    codec itself: every producer of the process compresses at the last level set.
    """
    encode_at_level = functools.partial(codec.zstd_encode, level=level)
    modules: list[Any] = [default_records]
    try:
        from aiokafka.record._crecords import default_records as compiled

        modules.append(compiled)
    except ImportError:  # pragma: no cover - the pure-Python build (AIOKAFKA_NO_EXTENSIONS)
        pass
    for module in modules:
        module.zstd_encode = encode_at_level


def spoils_producer(exc: BaseException) -> bool:
    """Whether a failed send may have left the idempotent producer's sequences broken.

    aiokafka numbers a batch when it leaves the accumulator; a batch that then fails (it expired
    waiting for a partition leader while the broker restarted, or the broker refused it) has used
    up its sequence numbers without the broker ever storing them, so every later batch to that
    partition is refused with OutOfOrderSequenceNumber, for ever (aio-libs/aiokafka#1017; the
    Java client bumps the producer epoch instead). Only a new producer id starts the sequences
    again. Any Kafka error of a send therefore retires the producer, except those raised before
    the record was queued.
    """
    return isinstance(exc, KafkaError) and not isinstance(exc, KEEPS_PRODUCER)


class ProducerRenewal:
    """Replaces an idempotent producer after a failed send, once per failure, whoever sees it.

    `replace()` builds and starts a fresh producer and retires the old one; sends that fail
    on the old producer while a replacement is under way see a newer `generation` and do not
    replace it again. `failing` (since when sends fail) feeds readiness.
    """

    def __init__(
        self,
        current: Callable[[], AIOKafkaProducer | None],
        install: Callable[[AIOKafkaProducer], Awaitable[None]],
        build: Callable[[], AIOKafkaProducer],
        name: str,
    ) -> None:
        self._current = current
        self._install = install
        self._build = build
        self.name = name
        self.generation = 0
        self.stale = False
        self.failing_since: float | None = None
        self.last_error = ""
        self.renewals = 0
        self._lock = asyncio.Lock()

    def succeeded(self) -> None:
        """A send went through: the producer works."""
        self.failing_since = None

    def failed(self, exc: BaseException) -> None:
        """A send failed: remember since when, for readiness."""
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]

    async def ensure(self) -> None:
        """Replace the producer if an earlier replacement could not start one."""
        if self.stale:
            await self.replace(self.generation)

    async def replace(self, seen_generation: int) -> None:
        """Replace the producer the caller used (`seen_generation`), unless someone already did."""
        async with self._lock:
            if seen_generation != self.generation and not self.stale:
                return
            self.stale = True
            old = self._current()
            if old is not None:
                await retire(old)
            fresh = self._build()
            try:
                await fresh.start()
            except BaseException:
                await fresh.stop()
                raise
            await self._install(fresh)
            self.generation += 1
            self.renewals += 1
            self.stale = False
            logger.warning(
                "kafka producer replaced after a failed send",
                extra={"producer": self.name, "renewals": self.renewals},
            )


async def retire(producer: AIOKafkaProducer) -> None:
    """Stop a producer whose pending sends may never go through: fail them, then close it."""
    # A closing producer waits for its queued batches, which a broken one never delivers.
    producer._message_accumulator.fail_all(ProducerClosed())
    try:
        await asyncio.wait_for(producer.stop(), RETIRE_TIMEOUT_SECONDS)
    except Exception as exc:  # the old producer is gone either way
        logger.warning("retired kafka producer did not stop cleanly", extra={"error": repr(exc)})


def kafka_headers(headers: Headers | None) -> list[tuple[str, bytes]]:
    """Kafka record headers from a str mapping."""
    return [(name, value.encode()) for name, value in (headers or {}).items()]


def batch_headers(batch: Any) -> dict[str, str]:
    """Headers of a loan batch: its type and loan count, so progress needs no decoding."""
    return {"event-type": batch.batch_type, "loan-count": str(len(batch.events))}


class KafkaPublisher:
    """An idempotent aiokafka producer that publishes contracts to registry topics."""

    def __init__(self, settings: ServiceSettings, **producer_options: Any) -> None:
        self.settings = settings
        use_zstd_level(settings.kafka_zstd_level)
        options: dict[str, Any] = {
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            "client_id": settings.service_name,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "max_request_size": MAX_REQUEST_BYTES,
            "compression_type": settings.compression_type,
        }
        options.update(producer_options)
        self.options = options
        self.producer = AIOKafkaProducer(**options)
        self.renewal = ProducerRenewal(
            lambda: self.producer, self._install, self._build, settings.service_name
        )

    def _build(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(**self.options)

    async def _install(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def __aenter__(self) -> KafkaPublisher:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def publish(
        self, topic: Topic, key: str, event: BaseModel | Struct, headers: Headers | None = None
    ) -> None:
        """Publish one contract (or wire Struct) and wait for the broker's acknowledgement."""
        await self.publish_raw(topic, key, encode(event), headers)
        record_produced(self.settings.service_name, topic.name, event_type_of(event, headers))

    async def publish_raw(
        self, topic: Topic, key: str | None, value: bytes, headers: Headers | None = None
    ) -> None:
        """Publish already-encoded bytes (producer rows, dead letters, replays).

        The current trace context rides along in W3C headers, so the consumer's span joins it.
        A send that fails replaces the producer (`spoils_producer`) and is sent again.
        """
        headers_out = kafka_headers(inject_headers(headers))
        for attempt in range(1, SEND_ATTEMPTS + 1):
            await self.renewal.ensure()
            generation = self.renewal.generation
            try:
                await self.producer.send_and_wait(
                    self.settings.topic(topic),
                    value=value,
                    key=key.encode() if key is not None else None,
                    headers=headers_out,
                )
            except Exception as exc:
                if not spoils_producer(exc):
                    raise
                self.renewal.failed(exc)
                await self.renewal.replace(generation)
                if attempt == SEND_ATTEMPTS:
                    raise
            else:
                self.renewal.succeeded()
                return

    async def publish_batch(self, topic: Topic, batch: Any, headers: Headers | None = None) -> None:
        """Publish a loan batch keyed `{run_id}:{batch_seq}` with its count headers."""
        merged = {**batch_headers(batch), **(headers or {})}
        await self.publish(topic, batch_key(batch.run_id, batch.batch_seq), batch, merged)
