"""Batched offset commits: what is noted, when it is committed, what a rebalance or a nack does."""

from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream.kafka.message import KafkaAckableMessage
from faststream.kafka.parser import AioKafkaParser

from services.common.commits import CommitBatcher

TOPIC = "loans.ingested.v1"


class Consumer(AIOKafkaConsumer):  # type: ignore[misc]
    """An AIOKafkaConsumer that records commits and seeks instead of talking to a broker."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.assigned = {TopicPartition(TOPIC, partition) for partition in range(6)}

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def __del__(self) -> None:
        pass

    async def commit(self, offsets: Any = None) -> None:
        self.commits.append(dict(offsets))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))


def record(partition: int, offset: int, consumer: Consumer) -> ConsumerRecord[Any, Any]:
    raw: Any = ConsumerRecord(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=b"{}",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=2,
        headers=(),
    )
    raw.consumer = consumer
    return raw


async def message(batcher: CommitBatcher, raw: ConsumerRecord[Any, Any]) -> Any:
    parser = AioKafkaParser(msg_class=KafkaAckableMessage, regex=None)
    return await batcher.parse(raw, parser.parse_message)


async def test_acknowledged_records_are_committed_together_at_their_next_offsets() -> None:
    consumer, batcher = Consumer(), CommitBatcher(600)
    for partition, offset in ((0, 10), (1, 5), (0, 11)):
        await (await message(batcher, record(partition, offset, consumer))).ack()

    assert consumer.commits == []
    await batcher.flush()
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 12, TopicPartition(TOPIC, 1): 6}]


async def test_a_nacked_record_seeks_the_consumer_back_and_is_never_committed() -> None:
    consumer, batcher = Consumer(), CommitBatcher(600)
    await (await message(batcher, record(0, 10, consumer))).ack()
    await (await message(batcher, record(0, 11, consumer))).nack()

    await batcher.flush()
    assert consumer.seeks == [(TopicPartition(TOPIC, 0), 11)]
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 11}]


async def test_revoked_partitions_commit_what_was_noted_first_and_keep_nothing_noted() -> None:
    consumer, batcher = Consumer(), CommitBatcher(600)
    await (await message(batcher, record(0, 10, consumer))).ack()
    await (await message(batcher, record(1, 3, consumer))).ack()

    await batcher.listener.on_partitions_revoked({TopicPartition(TOPIC, 0)})
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 11}]
    await batcher.flush()
    assert consumer.commits[1:] == [{TopicPartition(TOPIC, 1): 4}]


async def test_once_closed_every_acknowledgement_commits_at_once() -> None:
    consumer, batcher = Consumer(), CommitBatcher(600)
    await (await message(batcher, record(0, 10, consumer))).ack()
    await batcher.close()
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 11}]

    await (await message(batcher, record(0, 11, consumer))).ack()
    assert consumer.commits[1:] == [{TopicPartition(TOPIC, 0): 12}]


async def test_a_message_of_the_in_memory_test_broker_keeps_its_own_acknowledgement() -> None:
    batcher = CommitBatcher(600)
    raw = record(0, 10, Consumer())
    del raw.consumer
    parsed = await message(batcher, raw)
    await parsed.ack()
    assert not batcher.consumers


async def test_a_record_acknowledged_after_its_partition_was_revoked_is_not_committed() -> None:
    consumer, batcher = Consumer(), CommitBatcher(600)
    await batcher.listener.on_partitions_revoked({TopicPartition(TOPIC, 0)})
    consumer.assigned -= {TopicPartition(TOPIC, 0)}
    await (await message(batcher, record(0, 10, consumer))).ack()
    await (await message(batcher, record(1, 3, consumer))).ack()

    await batcher.flush()
    assert consumer.commits == [{TopicPartition(TOPIC, 1): 4}]
