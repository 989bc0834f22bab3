"""Reporting's adapters to Kafka: priced batches, run lifecycle events and review decisions in."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import ValidationError

from contracts.codec import decode, decode_union, loads
from contracts.reviews import REVIEW_EVENT, AnyReviewEvent
from contracts.runs import RunCompleted, RunFailed, RunRetryRequested, RunStarted, TapeIngested
from contracts.topics import LOANS_PRICED, REVIEWS, RUNS
from contracts.wire import PricedBatch
from services.common.consumer import (
    UndecodableMessage,
    consumer_options,
    contract_decoder,
    gc_paused,
    is_transient,
)
from services.common.dead_letters import (
    DeadLetterMiddleware,
    broker_publisher,
    broker_run_failer,
    reason_of,
    records_of,
)
from services.reporting.settings import ReportingSettings

logger = logging.getLogger(__name__)

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

    async def on_reviews(self, events: Sequence[AnyReviewEvent]) -> None: ...
    async def on_run_completed(self, event: RunCompleted) -> None: ...


async def decode_run_event(message: StreamMessage[Any]) -> HandledRunEvent | None:
    """The run events reporting acts on; any other event on `runs.v1` is None (not ours)."""
    try:
        model = HANDLED.get(loads(message.body).get("event_type"))
        return None if model is None else decode(message.body, model)
    except (ValidationError, ValueError, AttributeError) as error:
        raise UndecodableMessage(f"not a valid run event: {error}") from error


class ReviewBatch:
    """One poll of reviews.v1: its review events in log order (each with its record), and the
    records that are not one (each with the reason), to be dead-lettered alone."""

    __slots__ = ("events", "records", "rejected")

    def __init__(
        self,
        events: tuple[AnyReviewEvent, ...],
        records: tuple[Any, ...],
        rejected: tuple[tuple[Any, str], ...],
    ) -> None:
        self.events = events
        self.records = records
        self.rejected = rejected


async def decode_review_batch(message: StreamMessage[Any]) -> ReviewBatch:
    """Every record of a reviews.v1 poll validated on its own: a bad one spoils no other."""
    events: list[AnyReviewEvent] = []
    records: list[Any] = []
    rejected: list[tuple[Any, str]] = []
    with gc_paused():
        for record, body in zip(records_of(message), message.body, strict=True):
            try:
                events.append(decode_union(body, REVIEW_EVENT))
                records.append(record)
            except (ValidationError, ValueError) as error:
                problem = UndecodableMessage(f"not a valid review event: {error}")
                rejected.append((record, reason_of(problem)))
    return ReviewBatch(tuple(events), tuple(records), tuple(rejected))


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

    # The records of a poll that are not review events go to the dead-letter topic alone, as
    # the broker's dead-letter middleware would send each of them.
    dead_letters = DeadLetterMiddleware(
        settings.service_name,
        broker_publisher(broker, settings),
        fail_run=broker_run_failer(broker, settings),
    )

    @broker.subscriber(
        settings.topic(REVIEWS),
        decoder=decode_review_batch,
        batch=True,
        max_records=settings.review_batch_records,
        **consumer_options(settings.reviews_group),
    )
    async def on_review_events(batch: ReviewBatch) -> None:
        """Learn decisions (and cases' steps towards one) a poll at a time, in one transaction;
        decide each run whose last decision came. The offsets are committed after it."""
        try:
            await decisions.on_reviews(batch.events)
        except Exception as error:
            if is_transient(error):
                raise  # retried (and redelivered) by the dead-letter middleware
            # One event the batch cannot take must not cost the others: apply them one at a
            # time (those applied are skipped when the batch comes again), setting aside alone
            # each that fails by itself.
            logger.warning(
                "review batch failed, applying its events one at a time",
                extra={"events": len(batch.events), "error": reason_of(error)[:200]},
            )
            for event, record in zip(batch.events, batch.records, strict=True):
                try:
                    await decisions.on_reviews((event,))
                except Exception as alone:
                    if is_transient(alone):
                        raise
                    await dead_letters.send_records((record,), f"failed: {reason_of(alone)}")
        for record, reason in batch.rejected:
            await dead_letters.send_records((record,), reason)
