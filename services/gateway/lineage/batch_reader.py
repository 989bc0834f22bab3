"""Read single loan batches back from the log by position: the loan ids of held-up batches.

Only a handful of records are read, on demand, so the projector never has to keep the loan ids
of every batch on every stage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)
READ_TIMEOUT_MS = 5_000


async def loan_ids_at(
    settings: GatewaySettings, places: Sequence[tuple[str, int, int]]
) -> list[list[str]]:
    """The loan ids of the batch at each (physical topic, partition, offset); an empty list for
    a batch that could not be read."""
    if not places:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        client_id=f"{settings.service_name}-lineage",
    )
    found: list[list[str]] = []
    try:
        await asyncio.wait_for(consumer.start(), READ_TIMEOUT_MS / 1000)
        for topic, partition, offset in places:
            found.append(await _read_one(consumer, TopicPartition(topic, partition), offset))
    except Exception as error:  # the log is unreachable: say less, never fail the request
        logger.warning("batch read failed", extra={"error": type(error).__name__})
        found.extend([] for _ in range(len(places) - len(found)))
    finally:
        await consumer.stop()
    return found


async def _read_one(
    consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int
) -> list[str]:
    consumer.assign([partition])
    consumer.seek(partition, offset)
    fetched = await consumer.getmany(partition, timeout_ms=READ_TIMEOUT_MS, max_records=1)
    for record in fetched.get(partition, []):
        if record.offset == offset and record.value:
            body = orjson.loads(record.value)
            return [str(event["loan"]["loan_id"]) for event in body.get("events", [])]
    return []
