"""Rules' adapter to Kafka: an ingested batch in, the evaluated batch with the same number out."""

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from faststream.kafka import KafkaBroker, KafkaResponse

from contracts import loans
from contracts.ids import event_ids
from contracts.topics import LOANS_EVALUATED, LOANS_INGESTED
from contracts.wire import EvaluatedBatch, IngestedBatch, LoanEvaluated, LoanIngested
from services.common.consumer import (
    PermanentMessageError,
    consumer_options,
    contract_decoder,
    gc_paused,
)
from services.common.governance_metrics import record_dq_scores
from services.common.metrics import record_exceptions
from services.common.runtime import batch_response, utc_now
from services.rules.domain import RuleSet, RuleSetError, evaluate, load_rule_set
from services.rules.settings import RulesSettings

PRODUCER = "rules"


def evaluated(
    event: LoanIngested, rule_set: RuleSet, now: datetime, evaluated_id: UUID
) -> LoanEvaluated:
    """One loan's evaluation event, with its id (`loan.evaluated` of the run and loan ids)."""
    outcome = evaluate(event.loan, rule_set)
    return LoanEvaluated(
        event_id=evaluated_id,
        run_id=event.run_id,
        occurred_at=now,
        producer=PRODUCER,
        loan=event.loan,
        exceptions=outcome.exceptions,
        quality=outcome.quality,
        rule_set_version=rule_set.version,
    )


def evaluated_batch(batch: IngestedBatch, rule_set: RuleSet, now: datetime) -> EvaluatedBatch:
    """The evaluated batch: same run, number and parameters, loans in the same order; each
    event's id is the same on every redelivery."""
    events = batch.events
    ids = event_ids(
        "loan.evaluated", [event.run_id for event in events], [e.loan.loan_id for e in events]
    )
    return EvaluatedBatch(
        run_id=batch.run_id,
        batch_seq=batch.batch_seq,
        params=batch.params,
        events=tuple(
            evaluated(event, rule_set, now, id_) for event, id_ in zip(events, ids, strict=True)
        ),
    )


def rule_set_for(batch: IngestedBatch, default: RuleSet) -> RuleSet:
    """The rule set a batch's run asks for (SPEC §7 reprocess what-if), else the default."""
    wanted = batch.params.rule_set_version
    if not isinstance(wanted, str) or wanted == default.version:
        return default
    try:
        return load_rule_set(wanted)
    except RuleSetError as error:
        # The gateway checks the version before it asks; a version this worker lacks is bad data.
        raise PermanentMessageError(f"batch asks for {error}") from error


def subscribe(
    broker: KafkaBroker,
    settings: RulesSettings,
    rule_set: RuleSet,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Consume `loans.ingested.v1` (group `rules`) and publish to `loans.evaluated.v1`."""

    @broker.subscriber(
        settings.topic(LOANS_INGESTED),
        decoder=contract_decoder(IngestedBatch),
        **consumer_options(
            settings.consumer_group,
            commit_interval=settings.commit_interval_seconds,
            max_workers=settings.consumer_workers,
        ),
    )
    @broker.publisher(settings.topic(LOANS_EVALUATED), schema=loans.EvaluatedBatch)
    async def on_loans_ingested(batch: IngestedBatch) -> KafkaResponse:
        """Evaluate every loan of an ingested batch with the rule set its run asks for."""
        with gc_paused():
            output = evaluated_batch(batch, rule_set_for(batch, rule_set), clock())
            record_exceptions(e for event in output.events for e in event.exceptions)
            record_dq_scores(event.quality.dq_score for event in output.events)
            return batch_response(output)
