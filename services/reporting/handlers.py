"""Reporting's adapters to Kafka: priced batches, run lifecycle events and review decisions in."""

from __future__ import annotations

from typing import Any, Protocol

from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import ValidationError

from contracts.codec import decode, decode_union, loads
from contracts.reviews import REVIEW_EVENT, AnyReviewEvent
from contracts.runs import RunCompleted, RunFailed, RunRetryRequested, RunStarted, TapeIngested
from contracts.topics import LOANS_PRICED, REVIEWS, RUNS
from contracts.wire import PricedBatch
from services.common.consumer import UndecodableMessage, consumer_options, contract_decoder
from services.reporting.settings import ReportingSettings

HandledRunEvent = RunStarted | TapeIngested | RunFailed | RunRetryRequested | RunCompleted
HANDLED: dict[str, type[HandledRunEvent]] = {
    model.model_fields["event_type"].default: model
    for model in (RunStarted, TapeIngested, RunFailed, RunRetryRequested, RunCompleted)
}


class UseCases(Protocol):
    """What the handlers call (`services.reporting.service.ReportingService`)."""

    async def on_priced(self, batch: PricedBatch) -> None: ...
    async def on_run_started(self, event: RunStarted) -> None: ...
    async def on_tape_ingested(self, event: TapeIngested) -> None: ...
    async def on_run_failed(self, event: RunFailed) -> None: ...
    async def on_retry_requested(self, event: RunRetryRequested) -> None: ...


class DecisionUseCases(Protocol):
    """What the review handler calls (`services.reporting.deciding.DecisionService`)."""

    async def on_review(self, event: AnyReviewEvent) -> None: ...
    async def on_run_completed(self, event: RunCompleted) -> None: ...


async def decode_run_event(message: StreamMessage[Any]) -> HandledRunEvent | None:
    """The run events reporting acts on; any other event on `runs.v1` is None (not ours)."""
    try:
        model = HANDLED.get(loads(message.body).get("event_type"))
        return None if model is None else decode(message.body, model)
    except (ValidationError, ValueError, AttributeError) as error:
        raise UndecodableMessage(f"not a valid run event: {error}") from error


async def decode_review_event(message: StreamMessage[Any]) -> AnyReviewEvent:
    """One reviews.v1 event, validated."""
    try:
        return decode_union(message.body, REVIEW_EVENT)
    except (ValidationError, ValueError) as error:
        raise UndecodableMessage(f"not a valid review event: {error}") from error


def subscribe(
    broker: KafkaBroker,
    settings: ReportingSettings,
    service: UseCases,
    decisions: DecisionUseCases,
) -> None:
    """Consume `loans.priced.v1`, `runs.v1` and `reviews.v1`, each in its own consumer group."""

    @broker.subscriber(
        settings.topic(LOANS_PRICED),
        decoder=contract_decoder(PricedBatch),
        **consumer_options(settings.priced_group, max_workers=settings.consumer_workers),
    )
    async def on_loans_priced(batch: PricedBatch) -> None:
        """Disposition, store and publish a priced batch; complete its run when it is the last."""
        await service.on_priced(batch)

    @broker.subscriber(
        settings.topic(RUNS), decoder=decode_run_event, **consumer_options(settings.runs_group)
    )
    async def on_run_event(event: HandledRunEvent | None) -> None:
        """Track a run's lifecycle: start, final counts (may complete it), failure, retry, and
        completion (which may decide it)."""
        match event:
            case RunStarted():
                await service.on_run_started(event)
            case TapeIngested():
                await service.on_tape_ingested(event)
            case RunFailed():
                await service.on_run_failed(event)
            case RunRetryRequested():
                await service.on_retry_requested(event)
            case RunCompleted():
                await decisions.on_run_completed(event)

    @broker.subscriber(
        settings.topic(REVIEWS),
        decoder=decode_review_event,
        **consumer_options(settings.reviews_group),
    )
    async def on_review_event(event: AnyReviewEvent) -> None:
        """Learn a decision (or a case's step towards one); decide the run after its last."""
        await decisions.on_review(event)
