"""A contract event survives the real broker byte for byte, Decimals included."""

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.codec import decode, encode
from contracts.ids import event_id, loan_id
from contracts.loans import (
    IngestedBatch,
    LoanFields,
    LoanIngested,
    LoanRecord,
    RunParams,
)
from contracts.topics import LOANS_INGESTED
from services.common.kafka import KafkaPublisher
from services.common.settings import ServiceSettings

pytestmark = pytest.mark.integration


def a_batch() -> IngestedBatch:
    run = uuid4()
    events = []
    for row in (1, 2):
        record = LoanRecord(
            loan_id=loan_id(run, "tape.csv", row),
            seq=row,
            source_file="tape.csv",
            row=row,
            fields=LoanFields(seller_loan_number=f"L-{row}", loan_amount="150000.00"),
            extra={"state": "NY"},
        )
        events.append(
            LoanIngested(
                event_id=event_id("loan.ingested", run, record.loan_id),
                run_id=run,
                occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
                producer="ingest",
                loan=record,
            )
        )
    params = RunParams(irr_target=Decimal("8.0500"), pdate=date(2026, 11, 23))
    return IngestedBatch(run_id=run, batch_seq=3, params=params, events=tuple(events))


async def test_a_loan_batch_round_trips_through_the_broker_byte_exact(
    kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    settings = ServiceSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers, topic_prefix=topic_prefix
    )
    batch = a_batch()
    async with KafkaPublisher(settings) as publisher:
        await publisher.publish_batch(LOANS_INGESTED, batch)

    consumer = AIOKafkaConsumer(
        settings.topic(LOANS_INGESTED),
        bootstrap_servers=kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        wanted = f"{batch.run_id}:3".encode()
        found = []
        async with asyncio.timeout(30):
            while not found:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend(r for r in records if r.key == wanted)
    finally:
        await consumer.stop()

    [record] = found
    assert record.value == encode(batch)
    back = decode(record.value, IngestedBatch)
    assert back == batch
    assert back.params.irr_target == Decimal("8.0500")
    assert str(back.params.irr_target) == "8.0500"
    assert dict(record.headers) == {"event-type": b"loans.ingested", "loan-count": b"2"}
