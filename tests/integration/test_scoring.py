"""The scoring worker on a real broker: it trains its first model (its registry is empty),
announces it on models.v1 and turns dispositioned batches into scored batches of that number."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from asgi_lifespan import LifespanManager

from contracts.codec import decode
from contracts.loans import DispositionedBatch
from contracts.scoring import ModelLoaded, ScoredBatch
from contracts.topics import LOANS_DISPOSITIONED, LOANS_SCORED, MODELS, Topic
from services.common.kafka import KafkaPublisher
from services.scoring.main import build_app
from services.scoring.settings import ScoringSettings
from tests.factories import loan_dispositioned, loan_exception, loan_record, run_params

pytestmark = pytest.mark.integration


@pytest.fixture
async def scoring(
    kafka_bootstrap_servers: str, module_topic_prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[ScoringSettings, Any]]:
    """The scoring worker with an empty model registry of its own."""
    settings = ScoringSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=module_topic_prefix,
        consumer_group=f"scoring-{uuid4().hex[:8]}",
        # Other modules' services score on this session's topics too: a model name of our own.
        model_name=f"loan-engine-scoring-{uuid4().hex[:8]}",
        state_dir=tmp_path / "scoring",
        bootstrap_samples=1_000,
    )
    app = build_app(settings)
    async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30):
        yield settings, app


def batch(run_id: UUID, number: int) -> DispositionedBatch:
    first = 2 * number + 1
    return DispositionedBatch(
        run_id=run_id,
        batch_seq=number,
        params=run_params(),
        events=(
            loan_dispositioned(loan_record(seq=first, run_id=run_id), run_id=run_id),
            loan_dispositioned(
                loan_record(seq=first + 1, run_id=run_id, ltv_ratio="120"),
                exceptions=[loan_exception("ltv_ratio")],
                disposition="rejected",
                run_id=run_id,
            ),
        ),
    )


async def read(settings: ScoringSettings, topic: Topic, key_prefix: str, count: int) -> list[bytes]:
    """The first `count` values keyed with `key_prefix`, read from the topic's beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    found: list[bytes] = []
    try:
        partitions = [TopicPartition(settings.topic(topic), n) for n in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(240):
            while len(found) < count:
                polled = await consumer.getmany(timeout_ms=500)
                for record in (item for records in polled.values() for item in records):
                    if record.key.decode().startswith(key_prefix):
                        found.append(record.value)
    finally:
        await consumer.stop()
    return found


async def test_dispositioned_batches_come_out_scored_with_the_same_numbers_and_bytes_on_replay(
    scoring: tuple[ScoringSettings, Any],
) -> None:
    settings, app = scoring
    run_id = uuid4()
    async with KafkaPublisher(settings) as publisher:
        for number in (0, 1, 1):  # batch 1 twice: a redelivery
            await publisher.publish_batch(LOANS_DISPOSITIONED, batch(run_id, number))

    values = await read(settings, LOANS_SCORED, str(run_id), 3)
    scored = sorted((decode(value, ScoredBatch) for value in values), key=lambda b: b.batch_seq)
    assert [b.batch_seq for b in scored] == [0, 1, 1]
    assert scored[1] == scored[2]
    by_number = {b.batch_seq: b for b in scored}
    assert [event.seq for event in by_number[1].events] == [3, 4]
    kept, rejected = by_number[0].events
    assert rejected.routing.decision == "auto_decline"
    assert rejected.routing.reason == "hard_exception"
    assert kept.model_version == by_number[0].model_version == "1"
    assert kept.features.ltv_ratio == "80.00"
    redelivered = [value for value in values if decode(value, ScoredBatch).batch_seq == 1]
    assert redelivered[0] == redelivered[1]

    (card_value,) = await read(settings, MODELS, settings.model_name, 1)
    card = decode(card_value, ModelLoaded)
    assert (card.model_name, card.model_version, card.training_samples) == (
        settings.model_name,
        "1",
        1_000,
    )

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        response = await client.get("/health/ready")
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 200, response.text
    assert set(response.json()["checks"]) == {"kafka", "kafka-producer", "model"}
    assert 'loan_engine_model_feature_psi{feature="ltv_ratio"}' in metrics
