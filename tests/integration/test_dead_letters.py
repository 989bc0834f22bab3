"""Dead letters through a real broker: a bad record is set aside with where it came from and why,
and the worker goes on with the next one."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from asgi_lifespan import LifespanManager

from contracts.codec import decode, encode
from contracts.dead_letters import DeadLetter
from contracts.ids import batch_key
from contracts.loans import EvaluatedBatch, IngestedBatch
from contracts.topics import DEAD_LETTERS, LOANS_EVALUATED, LOANS_INGESTED, Topic
from services.rules.main import build_app
from services.rules.settings import RulesSettings
from tests.factories import loan_ingested, loan_record, run_params

pytestmark = pytest.mark.integration


@pytest.fixture
async def rules(
    kafka_bootstrap_servers: str, module_topic_prefix: str
) -> AsyncIterator[RulesSettings]:
    """A rules worker with a consumer group and topics of its own.

    Its own topics: on the session's, a new group would start with every batch other tests
    published, and still be working through them when the test ends.
    """
    settings = RulesSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=module_topic_prefix,
        consumer_group=f"rules-{uuid4().hex[:8]}",
    )
    async with LifespanManager(build_app(settings), startup_timeout=90, shutdown_timeout=30):
        yield settings


async def read_until(
    settings: RulesSettings, topic: Topic, found: Any, timeout: float = 60
) -> list[Any]:
    """Records of `topic` from its beginning until `found(records)` is truthy."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    try:
        partitions = [
            TopicPartition(settings.topic(topic), number) for number in range(topic.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(timeout):
            while not found(records):
                polled = await consumer.getmany(timeout_ms=500)
                records.extend(item for batch in polled.values() for item in batch)
    finally:
        await consumer.stop()
    return records


async def test_malformed_batches_are_dead_lettered_and_the_consumer_moves_on(
    rules: RulesSettings,
) -> None:
    run_id = uuid4()
    valid = IngestedBatch(
        run_id=run_id,
        batch_seq=0,
        params=run_params(),
        events=(loan_ingested(loan_record(run_id=run_id), run_id=run_id),),
    )
    key = batch_key(run_id, 0).encode()
    producer = AIOKafkaProducer(bootstrap_servers=rules.kafka_bootstrap_servers)
    await producer.start()
    try:
        topic = rules.topic(LOANS_INGESTED)
        # The same key puts all three on one partition, in this order.
        garbage = await producer.send_and_wait(topic, b"\x00\xffnot json", key=key)
        invalid = await producer.send_and_wait(topic, b'{"run_id": "x", "events": []}', key=key)
        await producer.send_and_wait(topic, encode(valid), key=key)
    finally:
        await producer.stop()

    def letters_of_run(records: list[Any]) -> list[DeadLetter]:
        letters = [decode(record.value, DeadLetter) for record in records]
        return [letter for letter in letters if letter.key == key.decode()]

    def evaluated_of_run(records: list[Any]) -> list[Any]:
        return [record for record in records if record.key == key]

    dead = await read_until(rules, DEAD_LETTERS, lambda found: len(letters_of_run(found)) == 2)
    evaluated = await read_until(rules, LOANS_EVALUATED, evaluated_of_run)

    first, second = sorted(letters_of_run(dead), key=lambda letter: letter.offset)
    assert (first.topic, first.partition, first.offset) == (
        garbage.topic,
        garbage.partition,
        garbage.offset,
    )
    assert first.service == "rules"
    assert first.payload == "b64:AP9ub3QganNvbg=="
    assert first.reason.startswith("UndecodableMessage: not a valid IngestedBatch")
    assert (second.partition, second.offset) == (invalid.partition, invalid.offset)
    assert second.payload == '{"run_id": "x", "events": []}'
    assert "run_id" in second.reason
    [batch] = [decode(record.value, EvaluatedBatch) for record in evaluated_of_run(evaluated)]
    assert batch.run_id == run_id
    assert [event.loan for event in batch.events] == [event.loan for event in valid.events]
