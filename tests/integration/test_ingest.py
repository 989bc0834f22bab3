"""The ingest service through a real broker: folders of files in, loan batches and run facts out."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from contracts.codec import decode, decode_union
from contracts.ids import event_id, loan_id
from contracts.loans import IngestedBatch, RunParams
from contracts.runs import (
    RUN_EVENT,
    RunFailed,
    RunReprocessRequested,
    RunRequested,
    RunRetryRequested,
    RunStarted,
    TapeIngested,
)
from contracts.topics import LOANS_INGESTED, RUNS
from services.cli.stack import topics
from services.common.kafka import KafkaPublisher
from services.ingest.main import build_app
from services.ingest.settings import IngestSettings

pytestmark = pytest.mark.integration

HEADER = "Seller Loan Number,Loan Amount,Note Rate,LTV Ratio,Credit Score,Property Type,State\n"
PARAMS = RunParams(irr_target=Decimal("8.05"), pdate=date(2026, 11, 23))
CREATED = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


class Recorder:
    """Reads run events and ingested batches from the beginning, for the runs a test asks about."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.run_events: list[Any] = []
        self.batches: list[IngestedBatch] = []
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
        )

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [
            TopicPartition(self.settings.topic(topic), number)
            for topic in (RUNS, LOANS_INGESTED)
            for number in range(topic.partitions)
        ]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)

    async def until(self, done: Callable[["Recorder"], bool], timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while not done(self):
                for records in (await self.consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        if record.topic == self.settings.topic(RUNS):
                            self.run_events.append(decode_union(record.value, RUN_EVENT))
                        else:
                            self.batches.append(decode(record.value, IngestedBatch))

    def events(self, run_id: UUID, kind: type | None = None) -> list[Any]:
        return [
            event
            for event in self.run_events
            if event.run_id == run_id and (kind is None or isinstance(event, kind))
        ]

    def batches_of(self, run_id: UUID) -> list[IngestedBatch]:
        found = {batch.batch_seq: batch for batch in self.batches if batch.run_id == run_id}
        return [found[seq] for seq in sorted(found)]

    def ended(self, run_id: UUID, count: int = 1) -> Callable[["Recorder"], bool]:
        return lambda rec: (
            len(rec.events(run_id, TapeIngested) + rec.events(run_id, RunFailed)) >= count
        )


@pytest.fixture(scope="module")
def ingest_settings(
    kafka_bootstrap_servers: str, module_topic_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> IngestSettings:
    root = tmp_path_factory.mktemp("ingest")
    return IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=module_topic_prefix,
        storage_root=root / "storage",
        state_dir=root / "state",
        loan_batch_size=2,
        max_rows=50,
        runs_group=f"ingest-{module_topic_prefix}",
        tapes_group=f"ingest-tapes-{module_topic_prefix}",
        http_port=0,
    )


@pytest.fixture(scope="module", autouse=True)
async def ingest(ingest_settings: IngestSettings) -> AsyncIterator[None]:
    app = build_app(ingest_settings)
    await app.start()
    try:
        yield
    finally:
        await app.stop()


@pytest.fixture
async def recorder(ingest_settings: IngestSettings) -> AsyncIterator[Recorder]:
    recorder = Recorder(ingest_settings)
    await recorder.start()
    try:
        yield recorder
    finally:
        await recorder.consumer.stop()


@pytest.fixture(scope="module")
async def publisher(ingest_settings: IngestSettings) -> AsyncIterator[KafkaPublisher]:
    async with KafkaPublisher(ingest_settings) as publisher:
        yield publisher


def write_inputs(settings: IngestSettings, folder: str, files: dict[str, bytes]) -> Path:
    base = settings.storage_root / "inputs" / folder
    base.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(content)
    return base


def partition_of(run_id: UUID, partitions: int) -> int:
    """The partition a run event keyed by this run id lands in (Kafka's default partitioner)."""
    return (murmur2(str(run_id).encode()) & 0x7FFFFFFF) % partitions


async def request_run(
    publisher: KafkaPublisher,
    folder: str,
    other_partition_than: UUID | None = None,
    partitions: int = 1,
) -> UUID:
    run_id = uuid4()
    while other_partition_than is not None and partition_of(run_id, partitions) == partition_of(
        other_partition_than, partitions
    ):
        run_id = uuid4()
    request = RunRequested(
        event_id=event_id("run.requested", run_id),
        run_id=run_id,
        occurred_at=CREATED,
        producer="test",
        params=PARAMS,
        folder=folder,
        created_at=CREATED,
    )
    await publisher.publish(RUNS, str(run_id), request)
    return run_id


async def test_a_folder_of_files_is_ingested_in_code_point_order_as_batches_of_loans(
    ingest_settings: IngestSettings, publisher: KafkaPublisher, recorder: Recorder
) -> None:
    folder = f"desk-{uuid4().hex[:8]}"
    write_inputs(
        ingest_settings,
        folder,
        {
            "a.csv": (HEADER + 'L-3,"$300,000.00",7.5,80,700,SFR,NY\n').encode(),
            "Z.csv": (
                HEADER + "L-1,100000,6.5,70,720,condo,CA\n\n L-2 ,200000,7,75,680,PUD,TX\n"
                "L-1,50000,6,60,650,SFR,NV\n"
            ).encode(),
            "notes.txt": b"not a tape",
            "nested/ignored.csv": (HEADER + "L-9,1,1,1,700,SFR,NY\n").encode(),
        },
    )
    run_id = await request_run(publisher, folder)

    await recorder.until(recorder.ended(run_id))

    (started,) = recorder.events(run_id, RunStarted)
    assert (started.source.kind, started.source.location) == ("folder", folder)
    assert started.created_at == CREATED
    (ingested,) = recorder.events(run_id, TapeIngested)
    assert ingested.files == ("Z.csv", "a.csv")
    assert ingested.total_loans == 4
    assert ingested.total_balance == Decimal("650000.00")
    assert ingested.duplicates == 1
    assert ingested.batch_count == 2
    batches = recorder.batches_of(run_id)
    loans = [event.loan for batch in batches for event in batch.events]
    assert [(loan.source_file, loan.row, loan.seq) for loan in loans] == [
        ("Z.csv", 1, 1),
        ("Z.csv", 2, 2),
        ("Z.csv", 3, 3),
        ("a.csv", 1, 4),
    ]
    assert [loan.fields.seller_loan_number for loan in loans] == ["L-1", "L-2", "L-1", "L-3"]
    assert loans[2].duplicate_of is not None and loans[2].duplicate_of.row == 1
    assert loans[3].fields.loan_amount == "300000.00"
    assert loans[0].extra == {"state": "CA"}
    assert loans[0].loan_id == loan_id(run_id, "Z.csv", 1)
    events = [event for batch in batches for event in batch.events]
    assert [event.event_id for event in events] == [
        event_id("loan.ingested", run_id, loan.loan_id) for loan in loans
    ]
    assert all(batch.params == PARAMS for batch in batches)
    archived = ingest_settings.storage_root / "archive" / str(run_id) / "input"
    assert sorted(path.name for path in archived.iterdir()) == ["Z.csv", "a.csv"]


async def test_a_redelivered_request_publishes_the_same_event_ids_again(
    ingest_settings: IngestSettings, publisher: KafkaPublisher, recorder: Recorder
) -> None:
    folder = f"again-{uuid4().hex[:8]}"
    write_inputs(
        ingest_settings, folder, {"t.csv": (HEADER + "L-1,100000,6.5,70,720,SFR,CA\n").encode()}
    )
    run_id = uuid4()
    request = RunRequested(
        event_id=event_id("run.requested", run_id),
        run_id=run_id,
        occurred_at=CREATED,
        producer="test",
        params=PARAMS,
        folder=folder,
        created_at=CREATED,
    )
    await publisher.publish(RUNS, str(run_id), request)
    await publisher.publish(RUNS, str(run_id), request)

    await recorder.until(recorder.ended(run_id, count=2))

    first, second = recorder.events(run_id, RunStarted)
    assert first.event_id == second.event_id
    assert first.created_at == second.created_at
    ids = [
        event.event_id
        for batch in recorder.batches
        if batch.run_id == run_id
        for event in batch.events
    ]
    assert len(ids) == 2 and ids[0] == ids[1]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "is empty"),
        ({"readme.txt": b"hello"}, "no .csv or .xlsx"),
        ({"tape.csv": HEADER.encode()}, "header but no data rows"),
        ({"tape.csv": (HEADER + "L-1,caf\xe9,1,1,700,SFR,NY\n").encode("latin-1")}, "not UTF-8"),
        ({"tape.csv": b"Loan Amount,loan_amount\n1,2\n"}, "'Loan Amount' and 'loan_amount'"),
        ({"tape.xlsx": b"PK\x03\x04 not really a workbook"}, "not a readable XLSX"),
        (
            {
                "tape.csv": (
                    HEADER + "".join(f"L-{n},1,1,1,700,SFR,NY\n" for n in range(51))
                ).encode()
            },
            "more than 50 data rows",
        ),
    ],
    ids=[
        "empty-folder",
        "no-tape-files",
        "header-only",
        "not-utf8",
        "column-clash",
        "bad-xlsx",
        "over-INGEST_MAX_ROWS",
    ],
)
async def test_a_folder_that_cannot_be_read_fails_the_run_with_a_clear_error(
    ingest_settings: IngestSettings,
    publisher: KafkaPublisher,
    recorder: Recorder,
    files: dict[str, bytes],
    expected: str,
) -> None:
    folder = f"bad-{uuid4().hex[:8]}"
    write_inputs(ingest_settings, folder, files)
    run_id = await request_run(publisher, folder)

    await recorder.until(recorder.ended(run_id))

    assert len(recorder.events(run_id, RunStarted)) == 1
    (failed,) = recorder.events(run_id, RunFailed)
    assert failed.phase == "ingest"
    assert expected in failed.error
    assert recorder.events(run_id, TapeIngested) == []


async def test_a_reprocess_reads_the_parent_runs_archived_inputs(
    ingest_settings: IngestSettings, publisher: KafkaPublisher, recorder: Recorder
) -> None:
    folder = f"parent-{uuid4().hex[:8]}"
    inputs = write_inputs(
        ingest_settings, folder, {"t.csv": (HEADER + "L-1,100000,6.5,70,720,SFR,CA\n").encode()}
    )
    parent = await request_run(publisher, folder)
    await recorder.until(recorder.ended(parent))
    (inputs / "t.csv").unlink()  # the archive, not the inputs area, is what a reprocess reads
    child = uuid4()
    params = RunParams(irr_target=Decimal("7.25"), pdate=date(2026, 12, 1))
    request = RunReprocessRequested(
        event_id=event_id("run.reprocess_requested", child),
        run_id=child,
        occurred_at=CREATED,
        producer="test",
        params=params,
        parent_run_id=parent,
        created_at=CREATED,
    )
    await publisher.publish(RUNS, str(child), request)

    await recorder.until(recorder.ended(child))

    (started,) = recorder.events(child, RunStarted)
    assert started.parent_run_id == parent
    assert started.source.kind == "archive"
    (ingested,) = recorder.events(child, TapeIngested)
    assert ingested.total_loans == 1
    assert all(batch.params == params for batch in recorder.batches_of(child))
    assert (ingest_settings.storage_root / "archive" / str(child) / "input" / "t.csv").exists()


async def test_a_retry_of_a_failed_ingest_reads_the_folder_again_as_the_next_attempt(
    ingest_settings: IngestSettings, publisher: KafkaPublisher, recorder: Recorder
) -> None:
    folder = f"retry-{uuid4().hex[:8]}"
    run_id = await request_run(publisher, folder)
    await recorder.until(recorder.ended(run_id))
    write_inputs(
        ingest_settings, folder, {"t.csv": (HEADER + "L-1,100000,6.5,70,720,SFR,CA\n").encode()}
    )
    retry = RunRetryRequested(
        event_id=event_id("run.retry_requested", run_id, 2),
        run_id=run_id,
        occurred_at=CREATED,
        producer="test",
        attempt=2,
        phase="ingest",
    )
    await publisher.publish(RUNS, str(run_id), retry)

    await recorder.until(recorder.ended(run_id, count=2))

    first, second = recorder.events(run_id, RunStarted)
    assert (first.attempt, second.attempt) == (1, 2)
    assert second.created_at == CREATED
    (ingested,) = recorder.events(run_id, TapeIngested)
    assert ingested.total_loans == 1


@pytest.mark.slow
async def test_a_long_tape_leaves_ingest_responsive_and_sigterm_stops_it_mid_tape_to_finish_later(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    prefix = f"stop-{uuid4().hex[:8]}."
    names = await topics.ensure_topics(kafka_bootstrap_servers, prefix)
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=prefix,
        storage_root=tmp_path / "storage",
        state_dir=tmp_path / "state",
        loan_batch_size=20,
        runs_group=f"ingest-{prefix}",
        tapes_group=f"ingest-tapes-{prefix}",
        http_port=0,
    )
    rows = 40_000
    body = "".join(f"L-{n},250000,6.5,80,720,SFR,NY\n" for n in range(1, rows + 1))
    write_inputs(settings, "long", {"tape.csv": (HEADER + body).encode()})
    recorder = Recorder(settings)
    await recorder.start()
    first = build_app(settings)
    await first.start()
    second = None
    try:
        async with KafkaPublisher(settings) as publisher:
            run_id = await request_run(publisher, "long")
        await recorder.until(lambda rec: len(rec.batches_of(run_id)) > 0, timeout=120)

        # The tape is being read, and the worker still answers on its event loop.
        transport = httpx.ASGITransport(app=first)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            assert (await client.get("/health/ready")).status_code == 200
        await asyncio.wait_for(first.stop(), timeout=30)  # guards against a hang only
        await drain(recorder)
        assert recorder.events(run_id, TapeIngested) + recorder.events(run_id, RunFailed) == []

        # The request was left uncommitted: a restarted ingest reads the tape again, to its end.
        second = build_app(settings)
        await second.start()
        await recorder.until(recorder.ended(run_id), timeout=300)
    finally:
        if second is not None:
            await second.stop()
        await recorder.consumer.stop()
        await topics.delete_topics(kafka_bootstrap_servers, names)

    (ingested,) = recorder.events(run_id, TapeIngested)
    assert ingested.total_loans == rows
    assert recorder.events(run_id, RunFailed) == []
    assert [batch.batch_seq for batch in recorder.batches_of(run_id)] == list(
        range(ingested.batch_count)
    )


@pytest.mark.slow
async def test_a_short_run_requested_behind_a_long_tape_completes_while_the_long_one_is_read(
    kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    prefix = f"both-{uuid4().hex[:8]}."
    names = await topics.ensure_topics(kafka_bootstrap_servers, prefix)
    settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=prefix,
        storage_root=tmp_path / "storage",
        state_dir=tmp_path / "state",
        loan_batch_size=20,
        runs_workers=RUNS.partitions,  # one partition each: two partitions, two workers
        runs_group=f"ingest-{prefix}",
        tapes_group=f"ingest-tapes-{prefix}",
        http_port=0,
    )
    body = "".join(f"L-{n},250000,6.5,80,720,SFR,NY\n" for n in range(1, 40_001))
    write_inputs(settings, "long", {"tape.csv": (HEADER + body).encode()})
    write_inputs(settings, "short", {"tape.csv": (HEADER + "L-1,1,1,1,700,SFR,NY\n").encode()})
    recorder = Recorder(settings)
    await recorder.start()
    app = build_app(settings)
    await app.start()
    try:
        async with KafkaPublisher(settings) as publisher:
            long_run = await request_run(publisher, "long")
            await recorder.until(lambda rec: len(rec.batches_of(long_run)) > 0, timeout=120)
            short_run = await request_run(
                publisher, "short", other_partition_than=long_run, partitions=RUNS.partitions
            )
            await recorder.until(recorder.ended(short_run), timeout=120)
            assert recorder.events(long_run, TapeIngested) == []
            await recorder.until(recorder.ended(long_run), timeout=300)
    finally:
        await app.stop()
        await recorder.consumer.stop()
        await topics.delete_topics(kafka_bootstrap_servers, names)

    assert len(recorder.events(short_run, TapeIngested)) == 1
    (long_ingested,) = recorder.events(long_run, TapeIngested)
    assert long_ingested.total_loans == 40_000
    # Its worker kept its group membership throughout: the request was never handed to another.
    assert len(recorder.events(long_run, RunStarted)) == 1


async def drain(recorder: Recorder) -> None:
    """Read whatever the topics hold now."""
    with contextlib.suppress(TimeoutError):
        await recorder.until(lambda _: False, timeout=3)
