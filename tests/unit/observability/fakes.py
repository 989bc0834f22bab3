"""Test doubles for the observability kit, wired in through parameters."""

from aiokafka import TopicPartition


class FakeConsumer:
    """What lag needs from an aiokafka consumer, with offsets set by the test."""

    def __init__(
        self,
        positions: dict[TopicPartition, int],
        highwaters: dict[TopicPartition, int | None],
        end_offsets: dict[TopicPartition, int] | None = None,
    ) -> None:
        self.positions = positions
        self.highwaters = highwaters
        self.ends = end_offsets or {}
        self.asked_for: list[list[TopicPartition]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters.get(partition)

    async def position(self, partition: TopicPartition) -> int:
        return self.positions[partition]

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked_for.append(partitions)
        return {tp: self.ends[tp] for tp in partitions}
