from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from faststream.kafka import KafkaBroker, TestKafkaBroker
from pydantic import BaseModel

from contracts import wire
from contracts.codec import decode, encode
from contracts.dead_letters import DeadLetter
from contracts.ids import event_id
from contracts.loans import PricedBatch, Pricing
from contracts.reviews import AnyReviewEvent, AutoDecision, AutoDecisionsRecorded
from contracts.runs import (
    RunCompleted,
    RunFailed,
    RunRequested,
    RunRetryRequested,
    RunSource,
    RunStarted,
    TapeIngested,
)
from contracts.topics import DEAD_LETTERS, LOANS_PRICED, REVIEWS, RUNS
from services.common.runtime import make_broker
from services.reporting.handlers import subscribe
from services.reporting.service import dispositioned_batch
from services.reporting.settings import ReportingSettings
from tests.factories import (
    OCCURRED_AT,
    RUN_ID,
    loan_exception,
    loan_priced,
    loan_record,
    run_params,
)

SETTINGS = ReportingSettings(topic_prefix="unit.", kafka_bootstrap_servers="127.0.0.1:1")
ENVELOPE = {"run_id": RUN_ID, "occurred_at": OCCURRED_AT, "producer": "ingest"}


@dataclass
class RecordingService:
    """A stand-in for ReportingService that records what the handlers hand it."""

    calls: list[tuple[str, BaseModel]] = field(default_factory=list)

    async def on_priced(self, batch: PricedBatch) -> None:
        self.calls.append(("priced", batch))

    async def on_run_started(self, event: RunStarted) -> None:
        self.calls.append(("started", event))

    async def on_tape_ingested(self, event: TapeIngested) -> None:
        self.calls.append(("ingested", event))

    async def on_run_failed(self, event: RunFailed) -> None:
        self.calls.append(("failed", event))

    async def on_retry_requested(self, event: RunRetryRequested) -> None:
        self.calls.append(("retry", event))

    async def on_reviews(self, events: Sequence[AnyReviewEvent]) -> None:
        self.calls.extend(("review", event) for event in events)

    async def on_run_completed(self, event: RunCompleted) -> None:
        self.calls.append(("completed", event))


def wired(service: RecordingService, letters: list[DeadLetter]) -> KafkaBroker:
    broker = make_broker(SETTINGS)
    subscribe(broker, SETTINGS, service, service)

    @broker.subscriber(SETTINGS.topic(DEAD_LETTERS), decoder=lambda message: message.body)
    async def collect(body: bytes) -> None:
        letters.append(decode(body, DeadLetter))

    return broker


def priced_batch() -> PricedBatch:
    return PricedBatch(
        run_id=RUN_ID,
        batch_seq=0,
        params=run_params(),
        events=(
            loan_priced(
                loan_record(seq=1), pricing=Pricing(pricing_spread="-0.2640", final_price="99.3400")
            ),
            loan_priced(loan_record(seq=2, seller_loan_number="LN2")),
            loan_priced(
                loan_record(seq=3, seller_loan_number="LN3"), exceptions=[loan_exception()]
            ),
        ),
    )


def tape_ingested() -> TapeIngested:
    return TapeIngested(
        event_id=event_id("run.tape_ingested", RUN_ID),
        total_loans=3,
        total_balance=Decimal("750000"),
        batch_count=1,
        files=("tape.csv",),
        duplicates=0,
        **ENVELOPE,
    )


async def test_a_priced_batch_is_handed_to_the_service_as_decoded() -> None:
    service, letters = RecordingService(), []
    batch = priced_batch()

    async with TestKafkaBroker(wired(service, letters)) as broker:
        await broker.publish(encode(batch), SETTINGS.topic(LOANS_PRICED))

    assert service.calls == [("priced", decode(encode(batch), wire.PricedBatch))]
    assert letters == []


async def test_each_run_event_reporting_tracks_reaches_its_use_case() -> None:
    service, letters = RecordingService(), []
    started = RunStarted(
        event_id=event_id("run.started", RUN_ID),
        params=run_params(),
        source=RunSource(kind="folder", location="2026-11-23"),
        created_at=OCCURRED_AT,
        **ENVELOPE,
    )
    failed = RunFailed(
        event_id=event_id("run.failed", RUN_ID), phase="output", error="disk full", **ENVELOPE
    )
    retry = RunRetryRequested(
        event_id=event_id("run.retry_requested", RUN_ID), attempt=2, phase="output", **ENVELOPE
    )

    async with TestKafkaBroker(wired(service, letters)) as broker:
        for event in (started, tape_ingested(), failed, retry):
            await broker.publish(encode(event), SETTINGS.topic(RUNS), key=str(RUN_ID).encode())

    assert [name for name, _ in service.calls] == ["started", "ingested", "failed", "retry"]
    assert service.calls[1][1] == tape_ingested()


async def test_a_run_completion_reaches_the_decisions_and_requests_are_ignored() -> None:
    service, letters = RecordingService(), []
    completed = RunCompleted(
        event_id=event_id("run.completed", RUN_ID),
        total_loans=0,
        total_balance=Decimal(0),
        exceptions_count=0,
        dispositions={},
        reports=(),
        completed_at=OCCURRED_AT,
        **ENVELOPE,
    )
    requested = RunRequested(
        event_id=event_id("run.requested", RUN_ID),
        params=run_params(),
        created_at=OCCURRED_AT,
        **{**ENVELOPE, "producer": "gateway"},
    )

    async with TestKafkaBroker(wired(service, letters)) as broker:
        await broker.publish(encode(requested), SETTINGS.topic(RUNS))
        await broker.publish(encode(completed), SETTINGS.topic(RUNS))

    assert service.calls == [("completed", completed)]
    assert letters == []


async def test_review_events_reach_the_decisions() -> None:
    service, letters = RecordingService(), []
    auto = AutoDecisionsRecorded(
        event_id=event_id("review.auto_decisions_recorded", RUN_ID, 0),
        run_id=RUN_ID,
        batch_seq=0,
        decisions=(AutoDecision(loan_id=RUN_ID, seq=1, decision_type="auto_approve", score=900),),
        occurred_at=OCCURRED_AT,
    )

    async with TestKafkaBroker(wired(service, letters)) as broker:
        await broker.publish(encode(auto), SETTINGS.topic(REVIEWS), key=b"k")

    assert service.calls == [("review", auto)]
    assert letters == []


async def test_a_bad_record_amid_good_ones_in_a_poll_is_dead_lettered_alone() -> None:
    service, letters = RecordingService(), []
    autos = [
        AutoDecisionsRecorded(
            event_id=event_id("review.auto_decisions_recorded", RUN_ID, seq),
            run_id=RUN_ID,
            batch_seq=seq,
            decisions=(
                AutoDecision(loan_id=RUN_ID, seq=seq + 1, decision_type="auto_approve", score=900),
            ),
            occurred_at=OCCURRED_AT,
        )
        for seq in (0, 1)
    ]
    bad = b'{"event_type": "review.case_opened"}'

    async with TestKafkaBroker(wired(service, letters)) as broker:
        await broker.publish_batch(
            encode(autos[0]), bad, encode(autos[1]), topic=SETTINGS.topic(REVIEWS)
        )

    assert service.calls == [("review", autos[0]), ("review", autos[1])]
    [letter] = letters
    assert letter.reason.startswith("UndecodableMessage: not a valid review event")
    assert letter.payload == bad.decode()
    assert letter.topic == SETTINGS.topic(REVIEWS)


@dataclass
class PoisonedService(RecordingService):
    """Fails, the way a bug or a value the database refuses would, on any batch holding `poison`."""

    poison: AnyReviewEvent | None = None
    batches: list[int] = field(default_factory=list)

    async def on_reviews(self, events: Sequence[AnyReviewEvent]) -> None:
        self.batches.append(len(events))
        if self.poison in events:
            raise ValueError("the database refused a value")
        await super().on_reviews(events)


async def test_an_event_that_fails_its_batch_is_dead_lettered_alone_and_the_rest_applied() -> None:
    autos = [
        AutoDecisionsRecorded(
            event_id=event_id("review.auto_decisions_recorded", RUN_ID, seq),
            run_id=RUN_ID,
            batch_seq=seq,
            decisions=(AutoDecision(loan_id=RUN_ID, seq=1, decision_type="auto_approve", score=9),),
            occurred_at=OCCURRED_AT,
        )
        for seq in (0, 1, 2)
    ]
    service, letters = PoisonedService(poison=autos[1]), []

    async with TestKafkaBroker(wired(service, letters)) as broker:
        await broker.publish_batch(*map(encode, autos), topic=SETTINGS.topic(REVIEWS))

    assert service.batches == [3, 1, 1, 1]
    assert service.calls == [("review", autos[0]), ("review", autos[2])]
    [letter] = letters
    assert letter.reason == "failed: ValueError: the database refused a value"
    assert decode(letter.payload.encode(), AutoDecisionsRecorded) == autos[1]


async def test_a_malformed_run_event_is_dead_lettered_and_the_next_one_handled() -> None:
    service, letters = RecordingService(), []

    async with TestKafkaBroker(wired(service, letters)) as broker:
        await broker.publish(b'{"event_type": "run.tape_ingested"}', SETTINGS.topic(RUNS))
        await broker.publish(b"\xff not json", SETTINGS.topic(RUNS))
        await broker.publish(encode(tape_ingested()), SETTINGS.topic(RUNS))

    assert [letter.service for letter in letters] == ["reporting", "reporting"]
    assert letters[0].reason.startswith("UndecodableMessage: not a valid run event")
    assert letters[1].payload.startswith("b64:")
    assert [name for name, _ in service.calls] == ["ingested"]


def test_dispositioned_batch_keeps_order_and_gives_each_loan_its_disposition_and_own_id() -> None:
    batch = decode(encode(priced_batch()), wire.PricedBatch)

    output = dispositioned_batch(batch, OCCURRED_AT)

    assert (output.run_id, output.batch_seq, output.params) == (RUN_ID, 0, batch.params)
    assert [e.disposition for e in output.events] == ["to_purchase", "projected", "rejected"]
    assert [e.loan for e in output.events] == [e.loan for e in batch.events]
    assert [e.event_id for e in output.events] == [
        event_id("loan.dispositioned", RUN_ID, e.loan.loan_id) for e in batch.events
    ]
    first = output.events[0]
    assert first.producer == "reporting"
    assert first.pricing == batch.events[0].pricing
