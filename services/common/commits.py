"""Offsets committed together: one OffsetCommit per consumer per interval, not one per record.

A worker acknowledges a record once its handler has finished and its outputs are acknowledged by
the broker (FastStream's `AckPolicy.NACK_ON_ERROR`: the acknowledgement runs after the return
value is published with `acks=all`). FastStream commits there, one round trip per record: measured
at ~0.2 ms of the worker's CPU per record (`benchmarks/records.py`) plus the broker's work
appending to `__consumer_offsets`. `BatchedCommits` notes the acknowledged record's next offset
instead and commits what was noted once per `interval` seconds, so at-least-once holds as before:

- only acknowledged records are ever committed (the offset noted is the record's own + 1, and a
  consumer handles its records one at a time, so every record before it was acknowledged too);
- a record that failed is sought back to (FastStream's nack) and never noted;
- a crash loses at most the last interval's commits: those records are delivered again (their
  outputs are deterministic, downstream takes a redelivered batch once);
- before partitions are revoked (a rebalance) what was noted for them is committed, and nothing
  noted for them is committed afterwards (their next owner starts from the committed offset);
- on shutdown (`flush_all`, an `on_shutdown` hook of every worker) what was noted is committed
  and every later acknowledgement commits at once, as FastStream did.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from faststream.message import StreamMessage

logger = logging.getLogger(__name__)

# Every subscriber's batcher in this process, for the shutdown flush.
_BATCHERS: weakref.WeakSet[CommitBatcher] = weakref.WeakSet()


class BatchedCommits:
    """One consumer's acknowledged offsets, committed together once per `interval` seconds."""

    def __init__(self, consumer: AIOKafkaConsumer, interval: float) -> None:
        self.consumer = consumer
        self.interval = interval
        self.pending: dict[TopicPartition, int] = {}
        self.commits = 0
        self.closing = False
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def acknowledged(self, record: ConsumerRecord[Any, Any]) -> None:
        """Note `record` as done (its outputs acknowledged); commit now when closing."""
        self.pending[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if self.closing or self.interval <= 0:
            await self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._due)

    def _due(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit what was noted (for `partitions` only, when given) and forget it.

        A commit that fails (the group is rebalancing, the consumer stopped) is logged: its
        records are delivered again from the last committed offset, never skipped.
        """
        async with self._lock:
            wanted = self.pending.keys() if partitions is None else set(partitions)
            offsets = {tp: self.pending.pop(tp) for tp in list(wanted) if tp in self.pending}
            # A record acknowledged after its partition was revoked is its next owner's to redo.
            owned = self.consumer.assignment()
            offsets = {tp: offset for tp, offset in offsets.items() if tp in owned}
            if not offsets:
                return
            try:
                await self.consumer.commit(offsets)
                self.commits += 1
            except KafkaError as error:
                logger.warning(
                    "offset commit failed; those records will be delivered again",
                    extra={"error": f"{type(error).__name__}: {error}", "offsets": len(offsets)},
                )

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop what was noted for partitions this consumer no longer owns."""
        for tp in partitions:
            self.pending.pop(tp, None)


class _RecordAck:
    """What a FastStream message acknowledges through: `commit()` notes its record as done,
    `seek()` (a nack) rewinds the real consumer."""

    __slots__ = ("commits", "record")

    def __init__(self, commits: BatchedCommits, record: ConsumerRecord[Any, Any]) -> None:
        self.commits = commits
        self.record = record

    async def commit(self) -> None:
        await self.commits.acknowledged(self.record)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.commits.consumer.seek(partition, offset)


class CommitBatcher:
    """One subscriber's batched commits: a FastStream `parser` and a rebalance `listener`.

    `broker.subscriber(topic, parser=batcher.parse, listener=batcher.listener, ...)` with
    `AckPolicy.NACK_ON_ERROR` (what `consumer_options(..., commit_interval=...)` sets up).
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.consumers: weakref.WeakKeyDictionary[AIOKafkaConsumer, BatchedCommits] = (
            weakref.WeakKeyDictionary()
        )
        self.closing = False
        self.listener = _FlushOnRevoke(self)
        _BATCHERS.add(self)

    def of(self, consumer: AIOKafkaConsumer) -> BatchedCommits:
        """The batched commits of one consumer (of a subscriber's subgroup)."""
        commits = self.consumers.get(consumer)
        if commits is None:
            commits = self.consumers[consumer] = BatchedCommits(consumer, self.interval)
            commits.closing = self.closing
        return commits

    async def parse(
        self,
        record: ConsumerRecord[Any, Any],
        original: Callable[[ConsumerRecord[Any, Any]], Awaitable[StreamMessage[Any]]],
    ) -> StreamMessage[Any]:
        """FastStream's own message, acknowledged through this batcher."""
        message = await original(record)
        consumer = getattr(message, "consumer", None)
        if isinstance(consumer, AIOKafkaConsumer):
            message.consumer = _RecordAck(self.of(consumer), record)  # type: ignore[attr-defined]
        return message

    async def flush(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Commit what every consumer noted (for `partitions` only, when given)."""
        wanted = None if partitions is None else frozenset(partitions)
        for commits in list(self.consumers.values()):
            await commits.flush(wanted)

    async def close(self) -> None:
        """Commit what was noted; from now on every acknowledgement commits at once."""
        self.closing = True
        for commits in list(self.consumers.values()):
            commits.closing = True
        await self.flush()


class _FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what was noted for partitions about to be revoked, and forgets it."""

    def __init__(self, batcher: CommitBatcher) -> None:
        self.batcher = batcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.batcher.flush(revoked)
        for commits in list(self.batcher.consumers.values()):
            commits.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:  # noqa: ARG002
        return None


async def flush_all() -> None:
    """Commit what every batcher of this process noted (a worker's `on_shutdown` hook)."""
    for batcher in list(_BATCHERS):
        await batcher.close()
