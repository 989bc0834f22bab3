"""A run's loan records cut into IngestedBatches and published, a window of them in flight.

SPEC §2: a batch holds up to LOAN_BATCH_SIZE loans; a smaller one is allowed. Batches are cut by
count and by size: a Kafka record has a size limit, and a tape with very long cells would exceed
it at 500 loans a batch. A batch whose loans add up (estimated from their text) to
`max_batch_bytes` is sent early; one that still encodes beyond what a record may hold is split in
two. `batch_seq` stays contiguous whatever the cuts, and a loan that alone cannot fit fails its
run naming its row and the limit.

A batch whose acknowledgement fails the way that replaces the producer (a broker restart: the
batch expired, or the old producer was retired with it in flight) is sent again through the new
producer, as it is (same `batch_seq`, same event ids): one replacement must not restart every
tape in flight from its first row. A batch that fails `RESENDS` times in a row, or any other way,
still fails the tape (its run request is read again and redone, deterministically).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from contracts.ids import event_id
from contracts.wire import IngestedBatch, LoanIngested, LoanRecord, RunParams
from services.common.consumer import gc_paused
from services.common.kafka import spoils_producer
from services.common.metrics import record_loans_processed
from services.ingest.errors import IngestError, TapeError

PRODUCER = "ingest"
RESENDS = 5
"""Sends of one batch again after its acknowledgement failed, before the tape gives up."""
# What a loan's event carries besides its cell text: ids, envelope, field names, JSON syntax.
LOAN_OVERHEAD_BYTES = 1024
SendBatch = Callable[[IngestedBatch], Awaitable["asyncio.Future[Any]"]]
"""Hands a loan batch to the producer and returns the future of its acknowledgement; raises
BatchTooLarge, before sending, when its encoded record would exceed what the broker accepts."""


class BatchTooLarge(IngestError):
    """A batch's encoded record is larger than a Kafka record may be (raised before sending)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a batch of {size} bytes is larger than the {limit} bytes a record holds")
        self.size = size
        self.limit = limit


class LoanTooLarge(TapeError):
    """One loan whose event alone is larger than a Kafka record may be."""

    def __init__(self, record: LoanRecord, size: int, limit: int) -> None:
        super().__init__(
            f"{record.source_file}: row {record.row} is too large to publish: its loan encodes "
            f"to {size} bytes, more than the {limit} bytes one Kafka record may hold"
        )


def estimated_size(record: LoanRecord) -> int:
    """About how many bytes a loan takes in a batch: its text plus a fixed overhead."""
    size = LOAN_OVERHEAD_BYTES
    for value in msgspec.structs.astuple(record.fields):
        if isinstance(value, str):
            size += len(value)
    for name, value in record.extra.items():
        size += len(name) + len(value)
    return size


@dataclass(slots=True)
class LoanBatchSender:
    """Cuts a run's loan records into IngestedBatches and publishes them, a window in flight."""

    send_batch: SendBatch
    run_id: UUID
    params: RunParams
    clock: Callable[[], datetime]
    batch_size: int
    max_batch_bytes: int
    publish_window: int
    batch_count: int = 0
    pending: deque[tuple[IngestedBatch, asyncio.Future[object]]] = field(default_factory=deque)
    resent: int = 0
    """Batches sent again after their acknowledgement failed (a replaced producer)."""
    buffer: list[LoanRecord] = field(default_factory=list)
    buffered_bytes: int = 0

    async def add(self, records: Sequence[LoanRecord]) -> None:
        """Buffer records in tape order and publish every batch that is full (by count or size);
        a partly filled batch waits for more records (or `finish`)."""
        for record in records:
            size = estimated_size(record)
            if self.buffer and self.buffered_bytes + size > self.max_batch_bytes:
                await self._flush()
            self.buffer.append(record)
            self.buffered_bytes += size
            if len(self.buffer) >= self.batch_size:
                await self._flush()

    def drop(self) -> None:
        """Shutting down mid-tape: forget the unsent records and stop waiting for acks in flight.

        The run request is not committed, so it is read again; the sends already made may land or
        not, and their deterministic ids make either harmless. Waiting for their acks could take
        as long as the broker is away, and shutdown must not.
        """
        self.buffer = []
        self.buffered_bytes = 0
        while self.pending:
            # Retrieve each outcome when it comes, so an unanswered failure is not logged.
            self.pending.popleft()[1].add_done_callback(_outcome_seen)

    async def abandon(self) -> None:
        """The run failed: drop the unsent records, wait for what is already in flight.

        Nothing is sent again and no failure of theirs is raised: the run's own failure must be
        published whatever became of them.
        """
        self.buffer = []
        self.buffered_bytes = 0
        while self.pending:
            _, future = self.pending.popleft()
            with contextlib.suppress(Exception):
                await future

    async def finish(self) -> int:
        """Send the last batch, wait for the broker's acks; the number of batches sent."""
        if self.buffer:
            await self._flush()
        try:
            while self.pending:
                await self._settle(*self.pending.popleft())
        except BaseException:
            self.drop()
            raise
        return self.batch_count

    async def _flush(self) -> None:
        records, self.buffer, self.buffered_bytes = self.buffer, [], 0
        await self._send(records)

    async def _send(self, records: list[LoanRecord]) -> None:
        """Publish one batch; split it in two while it encodes beyond a record's limit."""
        batch = self._batch(records)
        try:
            future = await self.send_batch(batch)
        except BatchTooLarge as error:
            if len(records) == 1:
                raise LoanTooLarge(records[0], error.size, error.limit) from None
            middle = len(records) // 2
            await self._send(records[:middle])
            await self._send(records[middle:])
            return
        self.pending.append((batch, future))
        self.batch_count += 1
        record_loans_processed(PRODUCER, PRODUCER, len(records))
        while len(self.pending) > self.publish_window:
            await self._settle(*self.pending.popleft())

    async def _settle(self, batch: IngestedBatch, future: asyncio.Future[object]) -> None:
        """Wait for a batch's acknowledgement; send it again while the producer was replaced."""
        for resend in range(RESENDS + 1):
            try:
                await future
                return
            except Exception as error:
                if resend == RESENDS or not spoils_producer(error):
                    raise
            self.resent += 1
            future = await self.send_batch(batch)

    def _batch(self, records: list[LoanRecord]) -> IngestedBatch:
        occurred_at = self.clock()
        with gc_paused():
            return IngestedBatch(
                run_id=self.run_id,
                batch_seq=self.batch_count,
                params=self.params,
                events=tuple(
                    LoanIngested(
                        event_id=event_id("loan.ingested", self.run_id, record.loan_id),
                        run_id=self.run_id,
                        occurred_at=occurred_at,
                        producer=PRODUCER,
                        loan=record,
                    )
                    for record in records
                ),
            )


def _outcome_seen(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()
