"""Rules, pricing and reporting as workers on a real broker and PostgreSQL: the golden tape's
ingested batches in, evaluated, priced and dispositioned batches out, the golden reports stored."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from asgi_lifespan import LifespanManager

from contracts.codec import decode, decode_union
from contracts.ids import event_id
from contracts.loans import (
    DispositionedBatch,
    EvaluatedBatch,
    IngestedBatch,
    LoanIngested,
    PricedBatch,
)
from contracts.runs import REPORT_KEYS, RUN_EVENT, RunCompleted, RunSource, RunStarted, TapeIngested
from contracts.topics import (
    LOANS_DISPOSITIONED,
    LOANS_EVALUATED,
    LOANS_INGESTED,
    LOANS_PRICED,
    RUNS,
    Topic,
)
from services.common.kafka import KafkaPublisher
from services.ingest.domain import InMemoryDuplicateIndex, Normaliser
from services.ingest.readers import read_rows
from services.pricing.main import build_app as build_pricing
from services.pricing.settings import PricingSettings
from services.reporting.main import build_app as build_reporting
from services.reporting.settings import ReportingSettings
from services.rules.main import build_app as build_rules
from services.rules.settings import RulesSettings
from tests.factories import run_params

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "csv"
BATCH_SIZE = 100
CREATED = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
OUTPUT_TOPICS = (LOANS_EVALUATED, LOANS_PRICED, LOANS_DISPOSITIONED, RUNS)
DECODERS: dict[str, Any] = {
    LOANS_EVALUATED.name: lambda value: decode(value, EvaluatedBatch),
    LOANS_PRICED.name: lambda value: decode(value, PricedBatch),
    LOANS_DISPOSITIONED.name: lambda value: decode(value, DispositionedBatch),
    RUNS.name: lambda value: decode_union(value, RUN_EVENT),
}


def golden_batches(run_id: UUID) -> tuple[list[IngestedBatch], TapeIngested]:
    """The golden CSV tape normalised by ingest's domain, in batches, and its tape-ingested fact."""
    normaliser = Normaliser(run_id, InMemoryDuplicateIndex())
    with (GOLDEN / "tape.csv").open("rb") as stream:
        records = list(normaliser.file("tape.csv", read_rows("tape.csv", stream)))
    events = [
        LoanIngested(
            event_id=event_id("loan.ingested", run_id, record.loan_id),
            run_id=run_id,
            occurred_at=CREATED,
            producer="ingest",
            loan=record,
        )
        for record in records
    ]
    batches = [
        IngestedBatch(
            run_id=run_id,
            batch_seq=number,
            params=run_params(),
            events=tuple(events[start : start + BATCH_SIZE]),
        )
        for number, start in enumerate(range(0, len(events), BATCH_SIZE))
    ]
    ingested = TapeIngested(
        event_id=event_id("run.tape_ingested", run_id),
        run_id=run_id,
        occurred_at=CREATED,
        producer="ingest",
        total_loans=normaliser.total_loans,
        total_balance=normaliser.total_balance,
        batch_count=len(batches),
        files=("tape.csv",),
        duplicates=normaliser.duplicates,
    )
    return batches, ingested


def run_started(run_id: UUID) -> RunStarted:
    return RunStarted(
        event_id=event_id("run.started", run_id),
        run_id=run_id,
        occurred_at=CREATED,
        producer="ingest",
        params=run_params(),
        source=RunSource(kind="folder", location="golden"),
        created_at=CREATED,
    )


class Outputs:
    """Everything the workers publish for one run, read from the start of each output topic."""

    def __init__(self, settings: ReportingSettings, run_id: UUID) -> None:
        self.settings = settings
        self.run_id = run_id
        self.by_topic: dict[str, list[Any]] = {topic.name: [] for topic in OUTPUT_TOPICS}
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
        )

    def completed(self) -> list[RunCompleted]:
        return [event for event in self.by_topic[RUNS.name] if isinstance(event, RunCompleted)]

    async def until_completed(self, timeout: float) -> RunCompleted:
        await self.consumer.start()
        try:
            partitions = [
                TopicPartition(self.settings.topic(topic), number)
                for topic in OUTPUT_TOPICS
                for number in range(topic.partitions)
            ]
            self.consumer.assign(partitions)
            await self.consumer.seek_to_beginning(*partitions)
            async with asyncio.timeout(timeout):
                while not self.completed():
                    polled = await self.consumer.getmany(timeout_ms=500)
                    for record in (item for records in polled.values() for item in records):
                        self._keep(record)
        finally:
            await self.consumer.stop()
        return self.completed()[0]

    def _keep(self, record: Any) -> None:
        if not record.key.decode().startswith(str(self.run_id)):
            return
        topic = record.topic.removeprefix(self.settings.topic_prefix)
        self.by_topic[topic].append(DECODERS[topic](record.value))

    def batches(self, topic: Topic) -> list[Any]:
        return sorted(self.by_topic[topic.name], key=lambda batch: batch.batch_seq)


def settings_for(
    kafka: str, prefix: str, database_url: str, storage_root: Path
) -> tuple[RulesSettings, PricingSettings, ReportingSettings]:
    """Worker settings on this session's broker, topics and database; groups unique per test."""
    tag = uuid4().hex[:8]
    shared = {
        "kafka_bootstrap_servers": kafka,
        "topic_prefix": prefix,
        "database_url": database_url,
        "storage_root": storage_root,
    }
    return (
        RulesSettings(**shared, consumer_group=f"rules-{tag}"),
        PricingSettings(**shared, consumer_group=f"pricing-{tag}"),
        ReportingSettings(
            **shared, priced_group=f"reporting-{tag}", runs_group=f"reporting-runs-{tag}"
        ),
    )


@pytest.fixture
async def workers(
    kafka_bootstrap_servers: str, topic_prefix: str, database_url: str, storage_root: Path
) -> AsyncIterator[tuple[ReportingSettings, dict[str, Any]]]:
    """The three workers running, each with its health app."""
    rules, pricing, reporting = settings_for(
        kafka_bootstrap_servers, topic_prefix, database_url, storage_root
    )
    apps = {
        "rules": build_rules(rules),
        "pricing": build_pricing(pricing),
        "reporting": build_reporting(reporting),
    }
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(
                LifespanManager(app, startup_timeout=90, shutdown_timeout=90)
            )
        yield reporting, apps


async def test_golden_tape_flows_from_ingested_to_dispositioned_and_its_reports_match(
    workers: tuple[ReportingSettings, dict[str, Any]], storage_root: Path
) -> None:
    settings, _ = workers
    run_id = uuid4()
    batches, ingested = golden_batches(run_id)

    async with KafkaPublisher(settings) as publisher:
        await publisher.publish(RUNS, str(run_id), run_started(run_id))
        for batch in batches:
            await publisher.publish_batch(LOANS_INGESTED, batch)
        await publisher.publish(RUNS, str(run_id), ingested)
    outputs = Outputs(settings, run_id)
    completed = await outputs.until_completed(timeout=120)

    expected = json.loads((GOLDEN / "expected" / "run.json").read_text(encoding="utf-8"))
    for topic in (LOANS_EVALUATED, LOANS_PRICED, LOANS_DISPOSITIONED):
        assert [batch.batch_seq for batch in outputs.batches(topic)] == list(range(len(batches)))
    evaluated = outputs.batches(LOANS_EVALUATED)
    assert [event.loan for batch in evaluated for event in batch.events] == [
        event.loan for batch in batches for event in batch.events
    ]
    assert {
        event.producer for batch in outputs.batches(LOANS_PRICED) for event in batch.events
    } == {"pricing"}
    assert completed.total_loans == expected["total_loans"]
    assert str(completed.total_balance) == expected["total_balance"]
    assert completed.exceptions_count == expected["exceptions_count"]
    assert completed.dispositions.model_dump() == expected["dispositions"]
    assert {report.key: report.sha256 for report in completed.reports} == expected["sha256"]
    for key in REPORT_KEYS:
        stored = (storage_root / f"outputs/{run_id}/{key}.csv").read_bytes()
        assert stored == (GOLDEN / "expected" / f"{key}.csv").read_bytes()


async def test_every_worker_reports_ready_with_its_dependencies(
    workers: tuple[ReportingSettings, dict[str, Any]],
) -> None:
    _, apps = workers
    for name, app in apps.items():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            response = await client.get("/health/ready")
        assert response.status_code == 200, (name, response.text)
    reporting_checks = set(response.json()["checks"])
    assert reporting_checks == {"kafka", "kafka-producer", "database", "storage"}
