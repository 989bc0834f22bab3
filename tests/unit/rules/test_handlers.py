from dataclasses import dataclass, field

from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from contracts.codec import decode, encode
from contracts.ids import event_id
from contracts.loans import EvaluatedBatch, IngestedBatch
from contracts.topics import LOANS_EVALUATED, LOANS_INGESTED
from services.common.runtime import make_broker
from services.rules.domain import load_rule_set
from services.rules.handlers import subscribe
from services.rules.settings import RulesSettings
from tests.factories import OCCURRED_AT, RUN_ID, loan_ingested, loan_record, run_params

SETTINGS = RulesSettings(topic_prefix="unit.", kafka_bootstrap_servers="127.0.0.1:1")


@dataclass
class Output:
    """What the handler published on loans.evaluated.v1."""

    batches: list[EvaluatedBatch] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def wired() -> tuple[KafkaBroker, Output]:
    broker = make_broker(SETTINGS)
    subscribe(broker, SETTINGS, load_rule_set(), clock=lambda: OCCURRED_AT)
    output = Output()

    @broker.subscriber(SETTINGS.topic(LOANS_EVALUATED), decoder=lambda message: message.body)
    async def collect(body: bytes, message: KafkaMessage) -> None:
        output.batches.append(decode(body, EvaluatedBatch))
        output.keys.append(message.raw_message.key)
        output.headers.append(message.headers)

    return broker, output


def ingested_batch(batch_seq: int = 7) -> IngestedBatch:
    return IngestedBatch(
        run_id=RUN_ID,
        batch_seq=batch_seq,
        params=run_params(),
        events=(
            loan_ingested(loan_record(seq=1)),
            loan_ingested(loan_record(seq=2, seller_loan_number="LN2", dti_ratio="50.01")),
        ),
    )


async def test_evaluated_batch_keeps_the_run_number_and_parameters_of_its_input() -> None:
    broker, output = wired()
    batch = ingested_batch()

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(encode(batch), SETTINGS.topic(LOANS_INGESTED))

    [evaluated] = output.batches
    assert (evaluated.run_id, evaluated.batch_seq, evaluated.params) == (
        RUN_ID,
        7,
        batch.params,
    )
    assert output.keys == [f"{RUN_ID}:7".encode()]
    assert output.headers[0]["event-type"] == "loans.evaluated"
    assert output.headers[0]["loan-count"] == "2"


async def test_each_loan_carries_its_exceptions_rule_set_and_deterministic_id() -> None:
    broker, output = wired()

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(encode(ingested_batch()), SETTINGS.topic(LOANS_INGESTED))

    eligible, high_dti = output.batches[0].events
    assert eligible.exceptions == ()
    assert [e.exception_type for e in high_dti.exceptions] == ["dti_ratio"]
    assert high_dti.event_id == event_id("loan.evaluated", RUN_ID, high_dti.loan.loan_id)
    assert {e.producer for e in (eligible, high_dti)} == {"rules"}
    assert eligible.rule_set_version == load_rule_set().version
    assert eligible.occurred_at == OCCURRED_AT
    assert [e.loan.seq for e in (eligible, high_dti)] == [1, 2]


async def test_redelivered_batch_is_evaluated_to_the_same_events() -> None:
    broker, output = wired()
    body = encode(ingested_batch())

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(body, SETTINGS.topic(LOANS_INGESTED))
        await test_broker.publish(body, SETTINGS.topic(LOANS_INGESTED))

    first, second = output.batches
    assert encode(first) == encode(second)
