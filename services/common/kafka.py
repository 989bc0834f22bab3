"""Publishing to Kafka: one idempotent producer per process, contracts encoded in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from msgspec import Struct
from pydantic import BaseModel

from contracts.codec import encode
from contracts.ids import batch_key
from contracts.topics import Topic
from services.common.metrics import event_type_of, record_produced
from services.common.settings import ServiceSettings
from services.common.tracing import inject_headers

MAX_REQUEST_BYTES = 16 * 1024 * 1024
Headers = Mapping[str, str]


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
        self.producer = AIOKafkaProducer(**options)

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
        """
        await self.producer.send_and_wait(
            self.settings.topic(topic),
            value=value,
            key=key.encode() if key is not None else None,
            headers=kafka_headers(inject_headers(headers)),
        )

    async def publish_batch(self, topic: Topic, batch: Any, headers: Headers | None = None) -> None:
        """Publish a loan batch keyed `{run_id}:{batch_seq}` with its count headers."""
        merged = {**batch_headers(batch), **(headers or {})}
        await self.publish(topic, batch_key(batch.run_id, batch.batch_seq), batch, merged)
