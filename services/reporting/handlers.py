"""Reporting's adapters to Kafka: priced batches in, run lifecycle events in."""

from __future__ import annotations

from typing import Any, Protocol

from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import ValidationError

from contracts.codec import decode, loads
from contracts.runs import RunFailed, RunRetryRequested, RunStarted, TapeIngested
from contracts.topics import LOANS_PRICED, RUNS
from contracts.wire import PricedBatch
from services.common.consumer import UndecodableMessage, consumer_options, contract_decoder
from services.reporting.settings import ReportingSettings

HandledRunEvent = RunStarted | TapeIngested | RunFailed | RunRetryRequested
HANDLED: dict[str, type[HandledRunEvent]] = {
    model.model_fields["event_type"].default: model
    for model in (RunStarted, TapeIngested, RunFailed, RunRetryRequested)
}


class UseCases(Protocol):
    """What the handlers call (`services.reporting.service.ReportingService`)."""

    async def on_priced(self, batch: PricedBatch) -> None: ...
    async def on_run_started(self, event: RunStarted) -> None: ...
    async def on_tape_ingested(self, event: TapeIngested) -> None: ...
    async def on_run_failed(self, event: RunFailed) -> None: ...
    async def on_retry_requested(self, event: RunRetryRequested) -> None: ...


async def decode_run_event(message: StreamMessage[Any]) -> HandledRunEvent | None:
    """The run events reporting acts on; any other event on `runs.v1` is None (not ours)."""
    try:
        model = HANDLED.get(loads(message.body).get("event_type"))
        return None if model is None else decode(message.body, model)
    except (ValidationError, ValueError, AttributeError) as error:
        raise UndecodableMessage(f"not a valid run event: {error}") from error


def subscribe(broker: KafkaBroker, settings: ReportingSettings, service: UseCases) -> None:
    """Consume `loans.priced.v1` and `runs.v1`, each in its own consumer group."""

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
        """Track a run's lifecycle: start, final counts (may complete it), failure, retry."""
        match event:
            case RunStarted():
                await service.on_run_started(event)
            case TapeIngested():
                await service.on_tape_ingested(event)
            case RunFailed():
                await service.on_run_failed(event)
            case RunRetryRequested():
                await service.on_retry_requested(event)
