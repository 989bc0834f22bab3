from decimal import Decimal

from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from contracts.codec import decode, encode
from contracts.ids import event_id
from contracts.loans import EvaluatedBatch, PricedBatch, Pricing
from contracts.topics import LOANS_EVALUATED, LOANS_PRICED
from services.common.runtime import make_broker
from services.pricing.handlers import subscribe
from services.pricing.settings import PricingSettings
from tests.factories import (
    OCCURRED_AT,
    RUN_ID,
    loan_evaluated,
    loan_exception,
    loan_record,
    run_params,
)

SETTINGS = PricingSettings(topic_prefix="unit.", kafka_bootstrap_servers="127.0.0.1:1")


def wired(published: list[tuple[PricedBatch, bytes, dict[str, str]]]) -> KafkaBroker:
    broker = make_broker(SETTINGS)
    subscribe(broker, SETTINGS, clock=lambda: OCCURRED_AT)

    @broker.subscriber(SETTINGS.topic(LOANS_PRICED), decoder=lambda message: message.body)
    async def collect(body: bytes, message: KafkaMessage) -> None:
        published.append((decode(body, PricedBatch), message.raw_message.key, message.headers))

    return broker


def evaluated_batch(irr_target: str) -> EvaluatedBatch:
    return EvaluatedBatch(
        run_id=RUN_ID,
        batch_seq=3,
        params=run_params(irr_target=Decimal(irr_target)),
        events=(
            loan_evaluated(loan_record(seq=1, note_rate="7.786")),
            loan_evaluated(loan_record(seq=2, note_rate="7.5"), exceptions=[loan_exception()]),
        ),
    )


async def test_priced_batch_uses_the_irr_target_its_run_carries() -> None:
    published: list[tuple[PricedBatch, bytes, dict[str, str]]] = []
    broker = wired(published)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(encode(evaluated_batch("8.05")), SETTINGS.topic(LOANS_EVALUATED))
        await test_broker.publish(encode(evaluated_batch("7.00")), SETTINGS.topic(LOANS_EVALUATED))

    at_805, at_700 = (batch.events[0].pricing for batch, _, _ in published)
    assert at_805 == Pricing(pricing_spread="-0.2640", final_price="99.3400")
    assert at_700 == Pricing(pricing_spread="0.7860", final_price="101.9650")


async def test_a_loan_with_a_hard_exception_is_not_priced_but_keeps_its_exceptions() -> None:
    published: list[tuple[PricedBatch, bytes, dict[str, str]]] = []
    broker = wired(published)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(encode(evaluated_batch("8.05")), SETTINGS.topic(LOANS_EVALUATED))

    batch, key, headers = published[0]
    rejected = batch.events[1]
    assert rejected.pricing is None
    assert rejected.exceptions == (loan_exception(),)
    assert rejected.event_id == event_id("loan.priced", RUN_ID, rejected.loan.loan_id)
    assert rejected.producer == "pricing"
    assert (batch.run_id, batch.batch_seq) == (RUN_ID, 3)
    assert key == f"{RUN_ID}:3".encode()
    assert headers["event-type"] == "loans.priced"
    assert headers["loan-count"] == "2"
