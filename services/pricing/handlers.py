"""Pricing's adapter to Kafka: an evaluated batch in, the priced batch with the same number out."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from faststream.kafka import KafkaBroker, KafkaResponse

from contracts import loans
from contracts.ids import event_ids
from contracts.topics import LOANS_EVALUATED, LOANS_PRICED
from contracts.wire import EvaluatedBatch, LoanEvaluated, LoanPriced, PricedBatch
from services.common.consumer import consumer_options, contract_decoder, gc_paused
from services.common.runtime import batch_response, utc_now
from services.pricing.domain import price
from services.pricing.settings import PricingSettings

PRODUCER = "pricing"


def priced(event: LoanEvaluated, irr_target: Decimal, now: datetime, priced_id: UUID) -> LoanPriced:
    """One loan's pricing event, with its id (`loan.priced` of the run and loan ids); pricing is
    None when it may not be priced."""
    return LoanPriced(
        event_id=priced_id,
        run_id=event.run_id,
        occurred_at=now,
        producer=PRODUCER,
        loan=event.loan,
        exceptions=event.exceptions,
        quality=event.quality,
        rule_set_version=event.rule_set_version,
        pricing=price(event.exceptions, event.loan.fields.note_rate, irr_target),
    )


def priced_batch(batch: EvaluatedBatch, now: datetime) -> PricedBatch:
    """The priced batch: same run, number and parameters; the IRR target is the run's own."""
    irr_target, events = batch.params.irr_target, batch.events
    ids = event_ids(
        "loan.priced", [event.run_id for event in events], [e.loan.loan_id for e in events]
    )
    return PricedBatch(
        run_id=batch.run_id,
        batch_seq=batch.batch_seq,
        params=batch.params,
        events=tuple(
            priced(event, irr_target, now, id_) for event, id_ in zip(events, ids, strict=True)
        ),
    )


def subscribe(
    broker: KafkaBroker, settings: PricingSettings, clock: Callable[[], datetime] = utc_now
) -> None:
    """Consume `loans.evaluated.v1` (group `pricing`) and publish to `loans.priced.v1`."""

    @broker.subscriber(
        settings.topic(LOANS_EVALUATED),
        decoder=contract_decoder(EvaluatedBatch),
        **consumer_options(
            settings.consumer_group,
            commit_interval=settings.commit_interval_seconds,
            max_workers=settings.consumer_workers,
        ),
    )
    @broker.publisher(settings.topic(LOANS_PRICED), schema=loans.PricedBatch)
    async def on_loans_evaluated(batch: EvaluatedBatch) -> KafkaResponse:
        """Price every loan of an evaluated batch against its run's IRR target."""
        with gc_paused():
            return batch_response(priced_batch(batch, clock()))
