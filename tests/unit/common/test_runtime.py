import httpx
from faststream.kafka import TestKafkaBroker

from contracts.codec import decode
from contracts.dead_letters import DeadLetter
from contracts.loans import IngestedBatch
from contracts.topics import DEAD_LETTERS, LOANS_INGESTED
from services.common.consumer import consumer_options, contract_decoder
from services.common.health import ReadyCheck
from services.common.metrics import DEAD_LETTERS_TOTAL
from services.common.runtime import build_worker_app, make_broker
from services.common.settings import ServiceSettings
from services.reporting.settings import ReportingSettings
from services.rules.settings import RulesSettings


async def storage_ok() -> None:
    return None


def settings() -> ServiceSettings:
    return ServiceSettings(
        service_name="pricing", kafka_bootstrap_servers="127.0.0.1:1", topic_prefix="unit."
    )


def test_broker_producer_is_durable_idempotent_and_compressed() -> None:
    broker = make_broker(settings())

    options = broker._connection_kwargs  # what aiokafka is given on connect

    assert options["acks"] == "all"
    assert options["enable_idempotence"] is True
    assert options["compression_type"] == "zstd"
    assert options["max_request_size"] == 16 * 1024 * 1024


def test_broker_compression_is_a_setting_and_none_means_uncompressed() -> None:
    none = ServiceSettings(kafka_bootstrap_servers="127.0.0.1:1", kafka_compression="none")
    lz4 = ServiceSettings(kafka_bootstrap_servers="127.0.0.1:1", kafka_compression="lz4")

    assert make_broker(none)._connection_kwargs["compression_type"] is None
    assert make_broker(lz4)._connection_kwargs["compression_type"] == "lz4"


async def test_worker_app_reports_kafka_unready_before_the_broker_connects() -> None:
    broker = make_broker(settings())
    app = build_worker_app(settings(), broker, ready_checks=[ReadyCheck("storage", storage_ok)])

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        ready = await client.get("/health/ready")
        alive = await client.get("/health")
        metrics = await client.get("/metrics")

    assert ready.status_code == 503
    assert ready.json()["failing"] == ["kafka"]
    assert ready.json()["checks"]["storage"] == "ok"
    assert alive.status_code == 200
    assert "loan_engine_dead_letters_total" in metrics.text


async def test_every_broker_dead_letters_an_undecodable_batch_to_the_prefixed_topic() -> None:
    config = settings()
    broker = make_broker(config)
    letters: list[DeadLetter] = []
    handled: list[IngestedBatch] = []
    counter = DEAD_LETTERS_TOTAL.labels("pricing", LOANS_INGESTED.name)
    before = counter._value.get()

    @broker.subscriber(
        config.topic(LOANS_INGESTED),
        decoder=contract_decoder(IngestedBatch),
        **consumer_options("pricing"),
    )
    async def on_batch(batch: IngestedBatch) -> None:
        handled.append(batch)

    @broker.subscriber(config.topic(DEAD_LETTERS), decoder=lambda message: message.body)
    async def on_dead_letter(body: bytes) -> None:
        letters.append(decode(body, DeadLetter))

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b'{"run_id": "nope"}', config.topic(LOANS_INGESTED), key=b"r:0")

    assert handled == []
    [letter] = letters
    assert letter.service == "pricing"
    assert letter.topic == "unit.loans.ingested.v1"
    assert letter.key == "r:0"
    assert letter.payload == '{"run_id": "nope"}'
    assert "IngestedBatch" in letter.reason
    assert counter._value.get() == before + 1


def test_consumer_groups_not_named_are_their_default_names_under_the_topic_prefix() -> None:
    # The default prefix keeps the bare names: a deployment keeps its committed offsets.
    assert RulesSettings().consumer_group == "rules"
    assert RulesSettings.model_validate({"topic_prefix": "x."}).consumer_group == "x.rules"
    assert RulesSettings(topic_prefix="staging.").consumer_group == "staging.rules"
    reporting = ReportingSettings(topic_prefix="bench-1.", runs_group="runs-of-my-own")
    assert (reporting.priced_group, reporting.reviews_group) == (
        "bench-1.reporting",
        "bench-1.reporting-reviews",
    )
    assert reporting.runs_group == "runs-of-my-own"


def test_rules_and_pricing_send_each_output_at_once_other_workers_linger() -> None:
    from services.pricing.main import build_app as pricing_app
    from services.pricing.settings import PricingSettings
    from services.rules.main import build_app as rules_app

    shared = {"kafka_bootstrap_servers": "127.0.0.1:1", "topic_prefix": "unit."}
    rules = rules_app(RulesSettings(**shared)).broker
    pricing = pricing_app(PricingSettings(**shared)).broker

    assert rules is not None and pricing is not None
    assert rules._connection_kwargs["linger_ms"] == 0
    assert pricing._connection_kwargs["linger_ms"] == 0
    assert make_broker(settings())._connection_kwargs["linger_ms"] == 5
