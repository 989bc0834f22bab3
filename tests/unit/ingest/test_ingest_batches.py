"""Loan batches cut by count and by size; batch_seq contiguous; a loan too big names its row."""

import asyncio
from collections import deque
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka.errors import KafkaTimeoutError, ProducerClosed

from contracts.codec import encode
from contracts.ids import loan_id
from contracts.wire import IngestedBatch, LoanFields, LoanRecord, RunParams
from services.ingest.batches import RESENDS, BatchTooLarge, LoanBatchSender, LoanTooLarge

RUN = UUID(int=7)
PARAMS = RunParams(irr_target=Decimal("8.05"), pdate=date(2026, 11, 23))


def record(row: int, text: str = "") -> LoanRecord:
    return LoanRecord(
        loan_id=loan_id(RUN, "tape.csv", row),
        seq=row,
        source_file="tape.csv",
        row=row,
        fields=LoanFields(seller_loan_number=f"L-{row}"),
        extra={"notes": text} if text else {},
    )


class Broker:
    """Accepts batches whose encoded size is within `limit`, like the producer's size check."""

    def __init__(self, limit: int = 10**9) -> None:
        self.limit = limit
        self.batches: list[IngestedBatch] = []

    async def send(self, batch: IngestedBatch) -> "asyncio.Future[Any]":
        size = len(encode(batch))
        if size > self.limit:
            raise BatchTooLarge(size, self.limit)
        self.batches.append(batch)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def sender(broker: Broker, batch_size: int = 500, max_batch_bytes: int = 10**9) -> LoanBatchSender:
    return LoanBatchSender(
        broker.send,
        RUN,
        PARAMS,
        lambda: datetime(2026, 11, 23, tzinfo=UTC),
        batch_size=batch_size,
        max_batch_bytes=max_batch_bytes,
        publish_window=4,
    )


def rows_by_batch(broker: Broker) -> list[list[int]]:
    return [[event.loan.row for event in batch.events] for batch in broker.batches]


async def test_batches_hold_up_to_the_batch_size_in_tape_order_across_calls() -> None:
    broker = Broker()
    loans = sender(broker, batch_size=3)

    await loans.add([record(n) for n in range(1, 3)])
    await loans.add([record(n) for n in range(3, 8)])

    assert await loans.finish() == 3
    assert rows_by_batch(broker) == [[1, 2, 3], [4, 5, 6], [7]]
    assert [batch.batch_seq for batch in broker.batches] == [0, 1, 2]


async def test_a_batch_is_cut_early_when_its_text_reaches_the_byte_budget() -> None:
    broker = Broker()
    loans = sender(broker, batch_size=500, max_batch_bytes=300_000)

    await loans.add([record(n, "x" * 120_000) for n in range(1, 8)])
    await loans.finish()

    assert rows_by_batch(broker) == [[1, 2], [3, 4], [5, 6], [7]]
    assert [batch.batch_seq for batch in broker.batches] == [0, 1, 2, 3]


async def test_a_batch_the_broker_refuses_as_too_large_is_split_keeping_seq_contiguous() -> None:
    broker = Broker(limit=300_000)
    loans = sender(broker, batch_size=500)

    await loans.add([record(n, "é" * 60_000) for n in range(1, 9)])
    await loans.finish()

    assert [row for batch in rows_by_batch(broker) for row in batch] == list(range(1, 9))
    assert [batch.batch_seq for batch in broker.batches] == list(range(len(broker.batches)))
    assert all(len(encode(batch)) <= 300_000 for batch in broker.batches)


async def test_a_loan_that_alone_exceeds_the_record_limit_fails_naming_its_row_and_the_limit() -> (
    None
):
    broker = Broker(limit=100_000)
    loans = sender(broker)

    with pytest.raises(LoanTooLarge, match=r"tape.csv: row 2 is too large .* 100000 bytes"):
        await loans.add([record(1), record(2, "x" * 200_000)])
        await loans.finish()


async def test_abandoning_drops_unsent_records() -> None:
    broker = Broker()
    loans = sender(broker, batch_size=10)
    await loans.add([record(n) for n in range(1, 4)])

    assert await loans.abandon() is None
    assert broker.batches == []
    assert uuid4() != RUN


class SilentBroker(Broker):
    """A broker that takes batches and never acknowledges them (it went away)."""

    async def send(self, batch: IngestedBatch) -> "asyncio.Future[Any]":
        self.batches.append(batch)
        return asyncio.get_running_loop().create_future()


async def test_dropping_on_shutdown_waits_for_no_acknowledgement_in_flight() -> None:
    broker = SilentBroker()
    loans = sender(broker, batch_size=2)
    await loans.add([record(n) for n in range(1, 6)])
    assert len(broker.batches) == 2 and len(loans.pending) == 2

    loans.drop()

    assert not loans.pending and not loans.buffer
    assert await asyncio.wait_for(loans.finish(), timeout=1) == 2


class ReplacedProducerBroker(Broker):
    """Fails the acknowledgement of chosen sends the way a retired or expired producer does."""

    def __init__(self, failing: dict[int, list[BaseException]]) -> None:
        super().__init__()
        self.failing = failing
        """batch_seq -> the errors its next acknowledgements fail with, in order."""

    async def send(self, batch: IngestedBatch) -> "asyncio.Future[Any]":
        self.batches.append(batch)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        errors = self.failing.get(batch.batch_seq)
        if errors:
            future.set_exception(errors.pop(0))
        else:
            future.set_result(None)
        return future


async def test_a_batch_whose_producer_was_replaced_is_sent_again_not_the_whole_tape() -> None:
    broker = ReplacedProducerBroker({1: [ProducerClosed(), KafkaTimeoutError()]})
    loans = sender(broker, batch_size=2)
    await loans.add([record(n) for n in range(1, 10)])

    assert await loans.finish() == 5
    assert [batch.batch_seq for batch in broker.batches] == [0, 1, 2, 3, 4, 1, 1]
    assert rows_by_batch(broker)[-1] == [3, 4]  # the same batch again, the same loans
    assert broker.batches[-1] == broker.batches[1]  # same event ids: downstream drops repeats
    assert loans.resent == 2


async def test_a_batch_that_keeps_failing_or_fails_otherwise_fails_the_tape() -> None:
    broker = ReplacedProducerBroker({0: [ProducerClosed() for _ in range(RESENDS + 1)]})
    loans = sender(broker, batch_size=2)
    await loans.add([record(n) for n in range(1, 3)])
    with pytest.raises(ProducerClosed):
        await loans.finish()
    assert len(broker.batches) == RESENDS + 1

    other = ReplacedProducerBroker({0: [ValueError("not a producer fault")]})
    loans = sender(other, batch_size=2)
    await loans.add([record(n) for n in range(1, 3)])
    with pytest.raises(ValueError, match="not a producer fault"):
        await loans.finish()
    assert len(other.batches) == 1


async def test_abandoning_a_failed_run_sends_nothing_again_and_raises_nothing() -> None:
    broker = ReplacedProducerBroker({seq: [ProducerClosed()] for seq in range(3)})
    loans = sender(broker, batch_size=2)
    await loans.add([record(n) for n in range(1, 7)])
    await loans.abandon()  # the run's own failure is published next, whatever became of these
    assert [batch.batch_seq for batch in broker.batches] == [0, 1, 2]
    assert loans.pending == deque()
