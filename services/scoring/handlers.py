"""Scoring's adapter to Kafka: a dispositioned batch in, the scored batch of that number out."""

from faststream.kafka import KafkaBroker, KafkaResponse

from contracts.codec import encode
from contracts.loans import DispositionedBatch
from contracts.scoring import ScoredBatch
from contracts.topics import LOANS_DISPOSITIONED, LOANS_SCORED, MODELS
from services.common.consumer import consumer_options, contract_decoder, gc_paused
from services.common.runtime import batch_response
from services.scoring.batches import scored_batch
from services.scoring.domain import RoutingPolicy, RunDriftMonitor
from services.scoring.metrics import record_drift, record_model, record_scored
from services.scoring.model import ServedModel
from services.scoring.serving import ModelSlot
from services.scoring.settings import ScoringSettings


def subscribe(
    broker: KafkaBroker, settings: ScoringSettings, slot: ModelSlot, policy: RoutingPolicy
) -> None:
    """Consume `loans.dispositioned.v1` (group `scoring`) and publish to `loans.scored.v1`."""
    monitors: dict[str, RunDriftMonitor] = {}

    @broker.subscriber(
        settings.topic(LOANS_DISPOSITIONED),
        decoder=contract_decoder(DispositionedBatch),
        **consumer_options(settings.consumer_group),
    )
    @broker.publisher(settings.topic(LOANS_SCORED), schema=ScoredBatch)
    async def on_loans_dispositioned(batch: DispositionedBatch) -> KafkaResponse:
        """Score and route every loan of a dispositioned batch with the production model."""
        model = await slot.get()
        version = model.card.model_version
        monitor = monitors.get(version) or monitors.setdefault(
            version, RunDriftMonitor(model.card, settings.drift_runs_kept)
        )
        with gc_paused():
            output = scored_batch(batch, model.scorer, version, policy)
            record_scored(output.events)
            record_drift(monitor.observe(batch.run_id, batch.batch_seq, output.features()))
            return batch_response(output)


async def publish_model_card(
    broker: KafkaBroker, settings: ScoringSettings, model: ServedModel
) -> None:
    """Announce the model served on `models.v1`, keyed by model name (one event id per version)."""
    card = model.card
    record_model(card.model_name, card.model_version)
    await broker.publish(
        encode(card),
        topic=settings.topic(MODELS),
        key=card.model_name.encode(),
        headers={"event-type": card.event_type},
    )
