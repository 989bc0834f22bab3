"""The API's Kafka publisher, connected on first use so the API serves reads without a broker."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from contracts.topics import Topic
from services.common.kafka import KafkaPublisher
from services.gateway.settings import GatewaySettings

BATCH_BYTES = 1024 * 1024


class LazyPublisher:
    """A `KafkaPublisher` started on the first publish (and again after a failed start)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._publisher: KafkaPublisher | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> KafkaPublisher:
        async with self._lock:
            if self._publisher is None:
                # Bulk exception actions publish thousands of small events at once: large
                # batches keep the idempotent producer's one request in flight full.
                publisher = KafkaPublisher(
                    self.settings, request_timeout_ms=10_000, max_batch_size=BATCH_BYTES
                )
                try:
                    await publisher.start()
                except Exception:
                    await publisher.stop()
                    raise
                self._publisher = publisher
            return self._publisher

    async def publish(
        self, topic: Topic, key: str, event: BaseModel, headers: dict[str, str] | None = None
    ) -> None:
        """Publish one contract and wait for the broker's acknowledgement."""
        publisher = await self._started()
        await publisher.publish(topic, key, event, headers)

    async def stop(self) -> None:
        """Flush and close the producer, if it was ever started."""
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None
