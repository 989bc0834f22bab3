"""The scoring handler under TestKafkaBroker: a dispositioned batch in, its scored batch out."""

from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from contracts.codec import decode, encode
from contracts.ids import event_id
from contracts.loans import DispositionedBatch
from contracts.scoring import ModelLoaded, ScoredBatch
from contracts.topics import LOANS_DISPOSITIONED, LOANS_SCORED, MODELS
from services.common.metrics import REGISTRY
from services.common.runtime import make_broker
from services.scoring.domain import load_policy
from services.scoring.handlers import publish_model_card, subscribe
from services.scoring.model import ServedModel
from services.scoring.serving import ModelSlot
from services.scoring.settings import ScoringSettings
from tests.factories import (
    OCCURRED_AT,
    RUN_ID,
    loan_dispositioned,
    loan_exception,
    loan_record,
    run_params,
)

SETTINGS = ScoringSettings(topic_prefix="unit.", kafka_bootstrap_servers="127.0.0.1:1")
Published = list[tuple[bytes, bytes, dict[str, str]]]


def wired(model: ServedModel, published: Published, cards: list[bytes]) -> KafkaBroker:
    broker = make_broker(SETTINGS)
    subscribe(broker, SETTINGS, ModelSlot(model), load_policy())

    @broker.subscriber(SETTINGS.topic(LOANS_SCORED), decoder=lambda message: message.body)
    async def collect(body: bytes, message: KafkaMessage) -> None:
        published.append((body, message.raw_message.key, message.headers))

    @broker.subscriber(SETTINGS.topic(MODELS), decoder=lambda message: message.body)
    async def collect_card(body: bytes) -> None:
        cards.append(body)

    return broker


def dispositioned_batch() -> DispositionedBatch:
    return DispositionedBatch(
        run_id=RUN_ID,
        batch_seq=4,
        params=run_params(),
        events=(
            loan_dispositioned(loan_record(seq=1)),
            loan_dispositioned(
                loan_record(seq=2, dti_ratio="65"),
                exceptions=[loan_exception()],
                disposition="rejected",
            ),
            loan_dispositioned(
                loan_record(seq=3, property_type="2-4 Unit"), disposition="projected"
            ),
        ),
    )


async def test_a_scored_batch_keeps_its_number_order_and_key_and_routes_each_loan(
    served_model: ServedModel,
) -> None:
    published: Published = []
    broker = wired(served_model, published, [])

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            encode(dispositioned_batch()), SETTINGS.topic(LOANS_DISPOSITIONED)
        )

    ((body, key, headers),) = published
    batch = decode(body, ScoredBatch)
    assert (batch.run_id, batch.batch_seq, batch.model_version) == (RUN_ID, 4, "7")
    assert key == f"{RUN_ID}:4".encode()
    assert headers["event-type"] == "loans.scored"
    assert headers["loan-count"] == "3"
    first, rejected, listed = batch.events
    assert [event.seq for event in batch.events] == [1, 2, 3]
    assert first.event_id == event_id("loan.scored", RUN_ID, first.loan_id)
    assert first.occurred_at == OCCURRED_AT
    assert (rejected.routing.decision, rejected.routing.reason) == (
        "auto_decline",
        "hard_exception",
    )
    assert (listed.routing.decision, listed.routing.reason) == (
        "human_review",
        "property_type_listed",
    )
    assert 0 <= first.score <= 1000
    assert first.positive_factors or first.negative_factors
    assert first.features.credit_score == "720"


async def test_a_replayed_batch_gives_the_same_bytes(served_model: ServedModel) -> None:
    published: Published = []
    broker = wired(served_model, published, [])

    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(2):
            await test_broker.publish(
                encode(dispositioned_batch()), SETTINGS.topic(LOANS_DISPOSITIONED)
            )

    assert published[0][0] == published[1][0]


async def test_scoring_sets_the_drift_gauges_and_counts_routing(served_model: ServedModel) -> None:
    broker = wired(served_model, [], [])
    before = (
        REGISTRY.get_sample_value("loan_engine_loans_scored_total", {"decision": "auto_decline"})
        or 0
    )

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(
            encode(dispositioned_batch()), SETTINGS.topic(LOANS_DISPOSITIONED)
        )

    after = REGISTRY.get_sample_value(
        "loan_engine_loans_scored_total", {"decision": "auto_decline"}
    )
    assert after is not None and after >= before + 1
    assert (
        REGISTRY.get_sample_value("loan_engine_model_feature_psi", {"feature": "credit_score"})
        is not None
    )
    assert REGISTRY.get_sample_value("loan_engine_model_drift_loans") == 3


async def test_an_undecodable_batch_is_not_scored(served_model: ServedModel) -> None:
    published: Published = []
    broker = wired(served_model, published, [])

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b'{"not": "a batch"}', SETTINGS.topic(LOANS_DISPOSITIONED))

    assert published == []


async def test_the_model_card_is_announced_keyed_by_model_name(served_model: ServedModel) -> None:
    cards: list[bytes] = []
    broker = wired(served_model, [], cards)

    async with TestKafkaBroker(broker):
        await publish_model_card(broker, SETTINGS, served_model)

    (card,) = (decode(body, ModelLoaded) for body in cards)
    assert card == served_model.card
