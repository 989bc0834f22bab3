"""A producer whose sequence numbers broke (aio-libs/aiokafka#1017: a batch that failed after
it was numbered, as when the broker restarts under it) is replaced and its send goes through,
instead of every later send being refused with OutOfOrderSequenceNumber for ever."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from asgi_lifespan import LifespanManager

from contracts.codec import decode, encode
from contracts.ids import batch_key
from contracts.loans import EvaluatedBatch, IngestedBatch
from contracts.topics import DEAD_LETTERS, LOANS_EVALUATED, LOANS_INGESTED, Topic
from services.common.dead_letters import build_dead_letter
from services.common.kafka import KafkaPublisher
from services.common.runtime import broker_renewal
from services.common.settings import ServiceSettings
from services.rules.main import build_app
from services.rules.settings import RulesSettings
from tests.factories import loan_ingested, loan_record, run_params

pytestmark = pytest.mark.integration


def spend_sequence_numbers(producer: AIOKafkaProducer, topic: str, partitions: int) -> None:
    """Leave `producer` as a batch that failed after it was numbered leaves it: a gap in every
    partition's sequence, so the broker refuses whatever it sends next there."""
    manager = producer._txn_manager
    assert manager is not None and manager.has_pid()
    for partition in range(partitions):
        manager.increment_sequence_number(TopicPartition(topic, partition), 7)


async def read_all(bootstrap: str, topic: str, partitions: int, found: Any) -> list[Any]:
    """Records of `topic` from its beginning until `found(records)` is truthy."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        assigned = [TopicPartition(topic, number) for number in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        async with asyncio.timeout(60):
            while not found(records):
                polled = await consumer.getmany(timeout_ms=500)
                records.extend(item for batch in polled.values() for item in batch)
    finally:
        await consumer.stop()
    return records


def letter(reason: str) -> bytes:
    """A valid dead letter (other tests of the session read this topic and decode it)."""
    return encode(
        build_dead_letter(
            service="sequence-test",
            reason=reason,
            topic="loans.ingested.v1",
            partition=0,
            offset=0,
            key=None,
            value=b"{}",
            occurred_at=datetime.now(UTC),
        )
    )


async def test_a_publisher_whose_sequence_numbers_broke_replaces_its_producer_and_delivers(
    kafka_bootstrap_servers: str, module_topic_prefix: str
) -> None:
    settings = ServiceSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers, topic_prefix=module_topic_prefix
    )
    topic = settings.topic(DEAD_LETTERS)
    key = f"sequence-{uuid4().hex}"
    first, second = letter(f"{key} first"), letter(f"{key} second")
    async with KafkaPublisher(settings) as publisher:
        await publisher.publish_raw(DEAD_LETTERS, key, first)
        spend_sequence_numbers(publisher.producer, topic, DEAD_LETTERS.partitions)
        spent = publisher.producer
        await asyncio.wait_for(publisher.publish_raw(DEAD_LETTERS, key, second), 60)

        assert publisher.renewal.renewals == 1
        assert publisher.producer is not spent
        assert publisher.renewal.failing_since is None

    records = await read_all(
        kafka_bootstrap_servers,
        topic,
        DEAD_LETTERS.partitions,
        lambda found: any(record.value == second for record in found),
    )
    assert [record.value for record in records if record.key == key.encode()] == [first, second]


@pytest.fixture
async def rules(kafka_bootstrap_servers: str, module_topic_prefix: str) -> AsyncIterator[Any]:
    """A rules worker with a consumer group of its own, and its app."""
    settings = RulesSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=module_topic_prefix,
        consumer_group=f"rules-{uuid4().hex[:8]}",
    )
    app = build_app(settings)
    async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30):
        yield settings, app


def ingested(run_id: Any, seq: int) -> IngestedBatch:
    return IngestedBatch(
        run_id=run_id,
        batch_seq=seq,
        params=run_params(),
        events=(loan_ingested(loan_record(run_id=run_id, seq=seq + 1), run_id=run_id),),
    )


async def test_a_worker_whose_producer_sequence_broke_replaces_it_and_goes_on(
    rules: tuple[RulesSettings, Any],
) -> None:
    settings, app = rules
    run_id = uuid4()
    evaluated_topic: Topic = LOANS_EVALUATED
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()

    async def send(seq: int) -> None:
        batch = ingested(run_id, seq)
        key = batch_key(run_id, seq).encode()
        await producer.send_and_wait(settings.topic(LOANS_INGESTED), encode(batch), key=key)

    def evaluated(count: int) -> Any:
        def found(records: list[Any]) -> bool:
            return len(of_run(records)) >= count

        return found

    def of_run(records: list[Any]) -> list[EvaluatedBatch]:
        batches = [decode(record.value, EvaluatedBatch) for record in records]
        return [batch for batch in batches if batch.run_id == run_id]

    physical = settings.topic(evaluated_topic)
    try:
        await send(0)
        await read_all(
            settings.kafka_bootstrap_servers, physical, evaluated_topic.partitions, evaluated(1)
        )
        renewal = broker_renewal(app.broker, settings.service_name)
        worker_producer = app.broker.config.broker_config.producer._producer.producer
        spend_sequence_numbers(worker_producer, physical, evaluated_topic.partitions)
        # The broker only refuses a gap on a partition where it knows the producer: batch 0
        # again goes where batch 0 went.
        for seq in (0, 1, 2):
            await send(seq)
        records = await read_all(
            settings.kafka_bootstrap_servers, physical, evaluated_topic.partitions, evaluated(4)
        )
    finally:
        await producer.stop()

    assert sorted(batch.batch_seq for batch in of_run(records)) == [0, 0, 1, 2]
    assert renewal.renewals >= 1
    assert renewal.failing_since is None
