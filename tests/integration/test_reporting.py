"""Reporting against a real PostgreSQL (and S3 in moto's server): runs complete once, exactly.

Most tests drive `ReportingService` directly with a recording publisher, so every interleaving of
the completion paths is chosen by the test; the last one goes through the real broker.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from asgi_lifespan import LifespanManager
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import wire
from contracts.codec import decode, decode_union, dumps, encode
from contracts.ids import event_id
from contracts.loans import DispositionedBatch, LoanPriced, PricedBatch
from contracts.runs import (
    REPORT_KEYS,
    RUN_EVENT,
    OutputsWritten,
    RunCompleted,
    RunFailed,
    RunRetryRequested,
    TapeIngested,
)
from contracts.topics import LOANS_DISPOSITIONED, LOANS_PRICED, RUNS, Topic
from services.cli.stack import databases
from services.common.db import make_engine, upgrade
from services.common.kafka import KafkaPublisher
from services.common.storage import LocalStorage, S3Storage, Storage
from services.pricing.domain import price
from services.reporting.main import build_app
from services.reporting.reports import render, render_all
from services.reporting.repository import ReportingRepository, metadata, runs
from services.reporting.service import ReportingService, dispositioned_batch
from services.reporting.settings import ReportingSettings
from services.rules.domain import evaluate, load_rule_set
from tests.factories import (
    OCCURRED_AT,
    loan_dispositioned,
    loan_exception,
    loan_priced,
    loan_record,
    run_params,
)
from tests.storage_faults import can_make_unwritable, set_writable

pytestmark = pytest.mark.integration

HEADER = (
    b"seller_loan_number,loan_amount,note_rate,ltv_ratio,dti_ratio,credit_score,property_type,"
    b"occupancy_status,loan_purpose,purchase_price,appraisal_value,disposition,pricing_spread,"
    b"final_price\r\n"
)


class RecordingPublisher:
    """Collects what the service publishes, in order."""

    def __init__(self) -> None:
        self.published: list[tuple[str, BaseModel]] = []

    async def publish(self, topic: Topic, key: str, event: BaseModel, headers: Any = None) -> None:
        self.published.append((topic.name, event))
        assert key == str(event.run_id)
        assert headers is None

    async def publish_batch(self, topic: Topic, batch: Any, headers: Any = None) -> None:
        self.published.append((topic.name, batch))
        assert headers is None

    def of(self, kind: type[BaseModel]) -> list[Any]:
        return [event for _, event in self.published if isinstance(event, kind)]


class FlakyStorage:
    """Local storage whose uploads fail while `failures` lasts (a storage outage)."""

    def __init__(self, inner: LocalStorage, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def put_file(self, key: str, path: Path) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError("storage unavailable")
        await self.inner.put_file(key, path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(ReportingSettings(database_url=database_url))
    await upgrade(engine, "reporting")
    yield engine
    await engine.dispose()


@pytest.fixture
async def scratch(_postgres_server_url: str) -> AsyncIterator[tuple[AsyncEngine, str]]:
    """An engine on a database of its own, not migrated (upgrade tests choose the revision)."""
    name = f"test_migrate_{uuid4().hex[:12]}"
    url = await databases.create_database(_postgres_server_url, name)
    engine = make_engine(ReportingSettings(database_url=url))
    try:
        yield engine, url
    finally:
        await engine.dispose()
        await databases.drop_database(_postgres_server_url, name)


def settings(database_url: str, **overrides: Any) -> ReportingSettings:
    return ReportingSettings(
        database_url=database_url, output_attempts=2, output_backoff_seconds=0, **overrides
    )


def service_for(
    engine: AsyncEngine, storage: Storage, publisher: RecordingPublisher, database_url: str
) -> ReportingService:
    clock = lambda: OCCURRED_AT  # noqa: E731 - a fixed clock keeps the events comparable
    return ReportingService(settings(database_url), engine, storage, publisher, clock)


def priced_loans(run_id: UUID, count: int) -> list[LoanPriced]:
    """`count` loans through the pure rules and pricing: every third one has a DTI of 55."""
    rule_set, loans = load_rule_set(), []
    for seq in range(1, count + 1):
        dti = "55" if seq % 3 == 0 else "35.0"
        record = loan_record(seq=seq, run_id=run_id, seller_loan_number=f"L{seq}", dti_ratio=dti)
        outcome = evaluate(record, rule_set)
        pricing = price(outcome.exceptions, record.fields.note_rate, Decimal("8.05"))
        loans.append(
            loan_priced(
                record,
                exceptions=outcome.exceptions,
                quality=outcome.quality,
                pricing=pricing,
                run_id=run_id,
            )
        )
    return loans


def batches(run_id: UUID, loans: Sequence[LoanPriced], size: int) -> list[wire.PricedBatch]:
    """The loans in batches of `size`, as the priced consumer decodes them."""
    built = [
        PricedBatch(
            run_id=run_id,
            batch_seq=number,
            params=run_params(),
            events=tuple(loans[start : start + size]),
        )
        for number, start in enumerate(range(0, len(loans), size))
    ]
    return [decode(encode(batch), wire.PricedBatch) for batch in built]


def tape_ingested(run_id: UUID, total: int, balance: str = "250000") -> TapeIngested:
    return TapeIngested(
        event_id=event_id("run.tape_ingested", run_id),
        run_id=run_id,
        occurred_at=OCCURRED_AT,
        producer="ingest",
        total_loans=total,
        total_balance=Decimal(balance),
        batch_count=1,
        files=("tape.csv",),
        duplicates=0,
    )


async def status_of(engine: AsyncEngine, run_id: UUID) -> tuple[str, int]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(runs.c.status, runs.c.dispositioned).where(runs.c.run_id == run_id)
            )
        ).one()
    return row.status, row.dispositioned


async def test_the_migrations_create_exactly_the_tables_the_repository_uses(
    engine: AsyncEngine,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "version_table_schema": "reporting",
                "include_name": lambda name, type_, _parent: (
                    type_ != "schema" or name == "reporting"
                ),
            },
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_upgrading_from_stored_events_renders_every_loan_as_the_service_would(
    scratch: tuple[AsyncEngine, str],
) -> None:
    engine, _ = scratch
    run_id = uuid4()
    stored = [
        loan_dispositioned(loan_record(seq=1), run_id=run_id),
        loan_dispositioned(
            loan_record(seq=2, seller_loan_number="=cmd"),
            exceptions=[loan_exception(), loan_exception("note_rate", severity="soft")],
            disposition="rejected",
            run_id=run_id,
        ),
    ]
    await upgrade(engine, "reporting", "0001")
    async with engine.begin() as connection:
        for loan in stored:
            await connection.execute(
                text(
                    "INSERT INTO reporting.loans (loan_id, run_id, seq, disposition, event) "
                    "VALUES (:loan_id, :run_id, :seq, :disposition, :event)"
                ),
                {
                    "loan_id": loan.loan.loan_id,
                    "run_id": run_id,
                    "seq": loan.loan.seq,
                    "disposition": loan.disposition,
                    "event": encode(loan).decode(),
                },
            )
    await upgrade(engine, "reporting")
    async with engine.connect() as connection:
        chunks = [
            list(chunk) async for chunk in ReportingRepository(connection).stream_loans(run_id, 10)
        ]
    expected = [render(loan) for loan in stored]
    assert chunks == [
        [
            (
                loan.seq,
                loan.disposition,
                loan.text,
                None if not loan.exceptions else dumps(loan.exceptions).decode(),
            )
            for loan in expected
        ]
    ]


async def test_upgrading_to_loans_keyed_by_tape_position_keeps_them_and_skips_their_redelivery(
    scratch: tuple[AsyncEngine, str], storage_root: Path
) -> None:
    engine, url = scratch
    run_id, publisher = uuid4(), RecordingPublisher()
    [batch] = batches(run_id, priced_loans(run_id, 3), size=3)
    rendered = render_all(dispositioned_batch(batch, OCCURRED_AT).events)
    await upgrade(engine, "reporting", "0003")
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO reporting.runs (run_id, dispositioned) VALUES (:run_id, 3)"),
            {"run_id": run_id},
        )
        for loan in rendered:
            await connection.execute(
                text(
                    "INSERT INTO reporting.loans (loan_id, run_id, seq, disposition,"
                    " report_rows, exceptions) VALUES (:loan_id, :run_id, :seq,"
                    " :disposition, :rows, :exceptions)"
                ),
                {
                    "loan_id": loan.loan_id,
                    "run_id": run_id,
                    "seq": loan.seq,
                    "disposition": loan.disposition,
                    "rows": loan.text,
                    "exceptions": dumps(loan.exceptions).decode() if loan.exceptions else None,
                },
            )
    await upgrade(engine, "reporting")
    service = service_for(engine, LocalStorage(storage_root), publisher, url)
    await service.on_priced(batch)  # redelivered after the upgrade: adds nothing
    await service.on_tape_ingested(tape_ingested(run_id, 3))
    async with engine.connect() as connection:
        columns = (
            await connection.execute(
                text(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = 'reporting' AND table_name = 'loans'"
                )
            )
        ).scalars()
        stored_columns = set(columns)
    state = await status_of(engine, run_id)
    assert "loan_id" not in stored_columns
    assert state == ("completed", 3)
    [completed] = publisher.of(RunCompleted)
    assert completed.total_loans == 3
    assert completed.dispositions.model_dump() == {"to_purchase": 2, "projected": 0, "rejected": 1}


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 7])
async def test_a_runs_stored_loans_stream_back_in_tape_order_a_page_at_a_time_and_no_others(
    engine: AsyncEngine, chunk: int
) -> None:
    run_id, other = uuid4(), uuid4()
    mine = render_all(
        loan_dispositioned(loan_record(seq=seq, run_id=run_id), run_id=run_id)
        for seq in (6, 1, 3, 2, 5, 4)
    )
    theirs = render_all(
        loan_dispositioned(loan_record(seq=seq, run_id=other), run_id=other) for seq in (1, 2, 7)
    )
    async with engine.begin() as connection:
        repository = ReportingRepository(connection)
        await repository.add_loans(run_id, mine[:3])
        await repository.add_loans(other, theirs)
        await repository.add_loans(run_id, mine[3:])
    async with engine.connect() as connection:
        pages = [
            list(page) async for page in ReportingRepository(connection).stream_loans(run_id, chunk)
        ]

    assert [len(page) for page in pages[:-1]] == [chunk] * (len(pages) - 1)
    assert 0 < len(pages[-1]) <= chunk
    ordered = sorted(mine, key=lambda loan: loan.seq)
    assert [row for page in pages for row in page] == [
        (loan.seq, loan.disposition, loan.text, None) for loan in ordered
    ]


async def test_run_completes_once_when_completion_is_observed_twice_and_batches_redelivered(
    engine: AsyncEngine, database_url: str, storage_root: Path
) -> None:
    run_id, publisher = uuid4(), RecordingPublisher()
    service = service_for(engine, LocalStorage(storage_root), publisher, database_url)
    first, second = batches(run_id, priced_loans(run_id, 6), size=3)

    await service.on_priced(first)
    await service.on_priced(first)  # redelivered: adds nothing
    await asyncio.gather(
        service.on_priced(second), service.on_tape_ingested(tape_ingested(run_id, 6))
    )
    await service.on_priced(second)  # redelivered after completion
    await service.on_tape_ingested(tape_ingested(run_id, 6))  # observed again

    [completed] = publisher.of(RunCompleted)
    assert len(publisher.of(OutputsWritten)) == 1
    assert completed.total_loans == 6
    assert completed.dispositions.model_dump() == {"to_purchase": 4, "projected": 0, "rejected": 2}
    assert completed.exceptions_count == 2
    assert completed.total_balance == Decimal("250000")
    assert await status_of(engine, run_id) == ("completed", 6)


async def test_a_batch_partly_stored_before_stores_and_counts_only_its_new_loans(
    engine: AsyncEngine, database_url: str, storage_root: Path
) -> None:
    run_id, publisher = uuid4(), RecordingPublisher()
    service = service_for(engine, LocalStorage(storage_root), publisher, database_url)
    loans = priced_loans(run_id, 5)
    [earlier] = batches(run_id, loans[1:3], size=2)
    [whole] = batches(run_id, loans, size=5)

    await service.on_priced(earlier)
    assert await status_of(engine, run_id) == ("pending", 2)
    await service.on_priced(whole)  # its 2nd and 3rd loans are stored: the COPY fails
    assert await status_of(engine, run_id) == ("pending", 5)
    await service.on_tape_ingested(tape_ingested(run_id, 5))

    [completed] = publisher.of(RunCompleted)
    assert completed.total_loans == 5
    assert completed.dispositions.model_dump() == {"to_purchase": 4, "projected": 0, "rejected": 1}


async def test_loans_copied_in_a_transaction_that_fails_are_neither_stored_nor_counted(
    engine: AsyncEngine,
) -> None:
    run_id = uuid4()
    rendered = render_all(
        loan_dispositioned(loan_record(seq=seq, run_id=run_id), run_id=run_id) for seq in (1, 2)
    )
    with pytest.raises(ConnectionResetError):
        async with engine.begin() as connection:
            state = await ReportingRepository(connection).add_new_loans(run_id, rendered)
            assert state.dispositioned == 2
            raise ConnectionResetError("the worker lost its database before the commit")
    async with engine.connect() as connection:
        assert [
            page async for page in ReportingRepository(connection).stream_loans(run_id, 10)
        ] == []
    async with engine.begin() as connection:
        state = await ReportingRepository(connection).add_new_loans(run_id, rendered)
    assert state.dispositioned == 2


async def test_loans_are_not_copied_outside_a_transaction(engine: AsyncEngine) -> None:
    run_id = uuid4()
    rendered = render_all([loan_dispositioned(loan_record(run_id=run_id), run_id=run_id)])
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(RuntimeError, match="needs a transaction"):
            await ReportingRepository(connection).add_new_loans(run_id, rendered)


async def test_tape_ingested_before_the_last_batch_completes_on_that_batch(
    engine: AsyncEngine, database_url: str, storage_root: Path
) -> None:
    run_id, publisher = uuid4(), RecordingPublisher()
    service = service_for(engine, LocalStorage(storage_root), publisher, database_url)
    first, second = batches(run_id, priced_loans(run_id, 4), size=2)

    await service.on_priced(first)
    await service.on_tape_ingested(tape_ingested(run_id, 4))
    assert publisher.of(RunCompleted) == []
    await service.on_priced(second)

    assert len(publisher.of(RunCompleted)) == 1
    dispositioned = publisher.of(wire.DispositionedBatch)
    assert [batch.batch_seq for batch in dispositioned] == [0, 1]
    # The loans are published before the run is declared complete.
    assert isinstance(publisher.published[-1][1], RunCompleted)


async def test_reports_are_stored_in_tape_order_and_archived_with_digests(
    engine: AsyncEngine, database_url: str, storage_root: Path
) -> None:
    run_id, publisher = uuid4(), RecordingPublisher()
    storage = LocalStorage(storage_root)
    await storage.put_bytes(f"archive/{run_id}/input/tape.csv", b"header\r\n")
    service = service_for(engine, storage, publisher, database_url)
    loans = priced_loans(run_id, 5)

    for batch in reversed(batches(run_id, loans, size=2)):  # partitions deliver in any order
        await service.on_priced(batch)
    await service.on_tape_ingested(tape_ingested(run_id, 5))

    [written] = publisher.of(OutputsWritten)
    purchase = (storage_root / f"outputs/{run_id}/purchase_tape.csv").read_bytes()
    assert purchase.startswith(HEADER)
    assert [line.split(b",")[0] for line in purchase.splitlines()[1:]] == [
        b"L1",
        b"L2",
        b"L4",
        b"L5",
    ]
    assert written.archive_input == (f"archive/{run_id}/input/tape.csv",)
    assert written.archive_output == tuple(
        f"archive/{run_id}/output/{key}.csv" for key in REPORT_KEYS
    )
    for report in written.reports:
        archived = (storage_root / f"archive/{run_id}/output/{report.key}.csv").read_bytes()
        assert archived == (storage_root / report.storage_key).read_bytes()
        assert report.uri == str(storage_root / report.storage_key)
        assert report.size == len(archived)
    by_key = {report.key: report.rows for report in written.reports}
    assert by_key == {
        "purchase_tape": 4,
        "projected_tape": 0,
        "rejection_report": 1,
        "exception_summary": 1,
    }


async def test_a_zero_loan_run_completes_with_header_only_reports(
    engine: AsyncEngine, database_url: str, storage_root: Path
) -> None:
    run_id, publisher = uuid4(), RecordingPublisher()
    service = service_for(engine, LocalStorage(storage_root), publisher, database_url)

    await service.on_tape_ingested(tape_ingested(run_id, 0, balance="0"))

    [completed] = publisher.of(RunCompleted)
    assert completed.total_loans == 0
    assert (storage_root / f"outputs/{run_id}/purchase_tape.csv").read_bytes() == HEADER
    summary = (storage_root / f"outputs/{run_id}/exception_summary.csv").read_bytes()
    assert summary == (
        b"exception_type,exception_category,severity,count,rejection_criteria,sample_message\r\n"
    )


async def test_a_work_dir_that_does_not_exist_yet_is_created_for_the_reports(
    engine: AsyncEngine, database_url: str, storage_root: Path, tmp_path: Path
) -> None:
    run_id, publisher = uuid4(), RecordingPublisher()
    work_dir = tmp_path / "not" / "there"
    service = ReportingService(
        settings(database_url, work_dir=work_dir),
        engine,
        LocalStorage(storage_root),
        publisher,
        lambda: OCCURRED_AT,
    )

    await service.on_tape_ingested(tape_ingested(run_id, 0, balance="0"))

    assert [event.run_id for event in publisher.of(RunCompleted)] == [run_id]
    assert work_dir.is_dir()


async def test_a_storage_outage_fails_the_run_at_output_and_a_retry_completes_it(
    engine: AsyncEngine, database_url: str, storage_root: Path
) -> None:
    run_id, publisher = uuid4(), RecordingPublisher()
    storage = FlakyStorage(LocalStorage(storage_root), failures=2)
    service = service_for(engine, storage, publisher, database_url)
    [batch] = batches(run_id, priced_loans(run_id, 2), size=2)

    await service.on_priced(batch)
    await service.on_tape_ingested(tape_ingested(run_id, 2))

    [failed] = publisher.of(RunFailed)
    assert failed.phase == "output"
    assert "storage unavailable" in failed.error
    assert publisher.of(RunCompleted) == []
    assert await status_of(engine, run_id) == ("failed", 2)
    await service.on_run_failed(failed)  # reporting reads its own failure back

    retry = RunRetryRequested(
        event_id=event_id("run.retry_requested", run_id, 2),
        run_id=run_id,
        occurred_at=OCCURRED_AT,
        producer="gateway",
        attempt=2,
        phase="output",
    )
    await service.on_retry_requested(retry)

    assert len(publisher.of(RunCompleted)) == 1
    assert await status_of(engine, run_id) == ("completed", 2)


async def test_storage_unwritable_for_a_while_delays_the_reports_instead_of_failing_the_run(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    if not can_make_unwritable():
        pytest.skip("no way to make a folder refuse root's writes (chattr)")
    root = tmp_path / "storage"
    root.mkdir()
    run_id, publisher = uuid4(), RecordingPublisher()
    service = ReportingService(
        ReportingSettings(database_url=database_url, output_attempts=8, output_backoff_seconds=0.2),
        engine,
        LocalStorage(root),
        publisher,
        lambda: OCCURRED_AT,
    )
    [batch] = batches(run_id, priced_loans(run_id, 3), size=3)
    await service.on_priced(batch)

    set_writable(root, False)  # a read-only remount, a permissions slip: writes are refused
    asyncio.get_running_loop().call_later(1.5, set_writable, root, True)
    try:
        await service.on_tape_ingested(tape_ingested(run_id, 3))
    finally:
        set_writable(root, True)

    assert publisher.of(RunFailed) == []
    [completed] = publisher.of(RunCompleted)
    assert completed.total_loans == 3
    assert (root / f"outputs/{run_id}/purchase_tape.csv").exists()
    assert await status_of(engine, run_id) == ("completed", 3)


def s3_object(endpoint: str, bucket: str, key: str) -> bytes:
    """An object's bytes read with plain boto3, independently of the storage under test."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())


async def test_reports_are_written_to_s3_when_storage_is_s3(
    engine: AsyncEngine,
    database_url: str,
    s3_endpoint: str,
) -> None:
    storage = S3Storage("reports", s3_endpoint, "us-east-1")
    await storage.ensure_bucket()
    run_id, publisher = uuid4(), RecordingPublisher()
    service = service_for(engine, storage, publisher, database_url)
    [batch] = batches(run_id, priced_loans(run_id, 3), size=3)

    await service.on_priced(batch)
    await service.on_tape_ingested(tape_ingested(run_id, 3))

    [completed] = publisher.of(RunCompleted)
    report = next(report for report in completed.reports if report.key == "purchase_tape")
    assert report.uri == f"s3://reports/outputs/{run_id}/purchase_tape.csv"
    body = s3_object(s3_endpoint, "reports", report.storage_key)
    assert body.startswith(HEADER)
    assert len(body.splitlines()) == 1 + report.rows == 3
    assert await storage.exists(f"archive/{run_id}/output/purchase_tape.csv")


async def read_run(
    settings: ReportingSettings, run_id: UUID, timeout: float = 60, grace: float = 3
) -> list[Any]:
    """Every event of `run_id` on runs.v1 and loans.dispositioned.v1, read until `grace` seconds
    after the first RunCompleted (so a second one would be seen too)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    found: list[Any] = []
    loop = asyncio.get_running_loop()
    try:
        partitions = [
            TopicPartition(settings.topic(topic), number)
            for topic in (RUNS, LOANS_DISPOSITIONED)
            for number in range(topic.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            polled = await consumer.getmany(timeout_ms=500)
            for record in (record for records in polled.values() for record in records):
                if not record.key.decode().startswith(str(run_id)):
                    continue
                if record.topic == settings.topic(RUNS):
                    event = decode_union(record.value, RUN_EVENT)
                    if isinstance(event, RunCompleted):
                        deadline = min(deadline, loop.time() + grace)
                    found.append(event)
                else:
                    found.append(decode(record.value, DispositionedBatch))
    finally:
        await consumer.stop()
    return found


async def test_through_the_broker_redelivered_batches_and_a_repeated_tape_event_complete_once(
    kafka_bootstrap_servers: str, module_topic_prefix: str, database_url: str, storage_root: Path
) -> None:
    config = ReportingSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=module_topic_prefix,
        database_url=database_url,
        storage_root=storage_root,
        priced_group=f"reporting-{uuid4().hex[:8]}",
        runs_group=f"reporting-runs-{uuid4().hex[:8]}",
    )
    run_id = uuid4()
    first, second = batches(run_id, priced_loans(run_id, 4), size=2)
    app = build_app(config)

    async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30):
        async with KafkaPublisher(config) as publisher:
            for batch in (first, second, first):
                await publisher.publish_batch(LOANS_PRICED, batch)
            for _ in range(2):
                await publisher.publish(RUNS, str(run_id), tape_ingested(run_id, 4))
        events = await read_run(config, run_id)

    completed = [event for event in events if isinstance(event, RunCompleted)]
    assert len(completed) == 1
    assert completed[0].dispositions.model_dump() == {
        "to_purchase": 3,
        "projected": 0,
        "rejected": 1,
    }
    assert len([event for event in events if isinstance(event, OutputsWritten)]) == 1
    dispositioned = [event for event in events if isinstance(event, DispositionedBatch)]
    assert sorted(batch.batch_seq for batch in dispositioned) == [0, 0, 1]
    first_copies = [encode(b) for b in dispositioned if b.batch_seq == 0]
    assert [e.event_id for e in decode(first_copies[0], DispositionedBatch).events] == [
        e.event_id for e in decode(first_copies[1], DispositionedBatch).events
    ]
    assert (storage_root / f"outputs/{run_id}/purchase_tape.csv").is_file()


_DECISIONS = text(
    "INSERT INTO reporting.decisions (loan_id, run_id, seq, decision_id, decision_type, final, "
    "score, conditions, decided_at) "
    "SELECT loan, run, seq, loan, 'approve', final, 700, '[]', now() FROM unnest("
    "CAST(:loans AS uuid[]), CAST(:runs AS uuid[]), CAST(:seqs AS int[]), "
    "CAST(:finals AS boolean[])) AS rows (loan, run, seq, final) "
    "ON CONFLICT (loan_id) DO UPDATE SET final = excluded.final, run_id = excluded.run_id"
)


async def decide(connection: Any, rows: list[dict[str, Any]]) -> None:
    """Store these decisions in one statement (inserting some, updating others, as an upsert)."""
    await connection.execute(
        _DECISIONS,
        {
            "loans": [row["loan"] for row in rows],
            "runs": [row["run"] for row in rows],
            "seqs": [row["seq"] for row in rows],
            "finals": [row["final"] for row in rows],
        },
    )


async def final_counts(engine: AsyncEngine, *run_ids: UUID) -> tuple[dict[UUID, int], ...]:
    """Each run's kept count and its count of final decisions as stored."""
    async with engine.connect() as connection:
        kept = await connection.execute(
            text("SELECT run_id, final FROM reporting.final_counts WHERE run_id = ANY(:ids)"),
            {"ids": list(run_ids)},
        )
        stored = await connection.execute(
            text(
                "SELECT run_id, count(*) FROM reporting.decisions "
                "WHERE final AND run_id = ANY(:ids) GROUP BY run_id"
            ),
            {"ids": list(run_ids)},
        )
        return (
            {row[0]: row[1] for row in kept if row[1]},
            {row[0]: row[1] for row in stored},
        )


async def test_a_runs_final_count_follows_every_statement_that_makes_a_decision_final_or_not(
    engine: AsyncEngine,
) -> None:
    first, second = uuid4(), uuid4()
    loans = [uuid4() for _ in range(6)]
    steps: list[tuple[str, list[dict[str, Any]]]] = [
        # auto decisions of two runs in one statement, one of them not final
        (
            "insert",
            [
                {"loan": loans[i], "run": first if i < 4 else second, "seq": i, "final": i != 3}
                for i in range(6)
            ],
        ),
        # a final decision replaced by an override awaiting approval (upsert: final -> not)
        ("insert", [{"loan": loans[0], "run": first, "seq": 0, "final": False}]),
        # a redelivered auto decision changes nothing
        ("insert", [{"loan": loans[1], "run": first, "seq": 1, "final": True}]),
        # a decision moved to the other run
        ("insert", [{"loan": loans[2], "run": second, "seq": 2, "final": True}]),
        # one statement inserting into one run and updating another's (both transition tables)
        (
            "upsert",
            [
                {"loan": loans[5], "run": second, "seq": 5, "final": False},
                {"loan": uuid4(), "run": first, "seq": 7, "final": True},
            ],
        ),
    ]
    for _, rows in steps:
        async with engine.begin() as connection:
            await decide(connection, rows)
        kept, stored = await final_counts(engine, first, second)
        assert kept == stored
    async with engine.begin() as connection:  # an override approved
        await connection.execute(
            text("UPDATE reporting.decisions SET final = true WHERE loan_id = :loan"),
            {"loan": loans[0]},
        )
    assert (await final_counts(engine, first, second)) == ({first: 3, second: 2},) * 2
    async with engine.begin() as connection:  # a rejected override deleted, then a final one
        await connection.execute(
            text("DELETE FROM reporting.decisions WHERE loan_id = ANY(:loans)"),
            {"loans": [loans[3], loans[4]]},
        )
    assert (await final_counts(engine, first, second)) == ({first: 3, second: 1},) * 2
    async with engine.begin() as connection:  # a transaction that fails counts nothing
        await decide(connection, [{"loan": uuid4(), "run": first, "seq": 9, "final": True}])
        await connection.rollback()
    assert (await final_counts(engine, first, second)) == ({first: 3, second: 1},) * 2


async def test_upgrading_to_kept_final_counts_starts_them_from_the_stored_decisions(
    scratch: tuple[AsyncEngine, str],
) -> None:
    engine, _ = scratch
    run_id = uuid4()
    await upgrade(engine, "reporting", "0004")
    async with engine.begin() as connection:
        await decide(
            connection,
            [{"loan": uuid4(), "run": run_id, "seq": i, "final": i < 5} for i in range(7)],
        )
    await upgrade(engine, "reporting")
    assert await final_counts(engine, run_id) == ({run_id: 5},) * 2
    async with engine.begin() as connection:
        await decide(connection, [{"loan": uuid4(), "run": run_id, "seq": 7, "final": True}])
    assert await final_counts(engine, run_id) == ({run_id: 6},) * 2
    async with engine.begin() as connection:  # a truncate forgets the counts with the decisions
        await connection.execute(text("TRUNCATE reporting.decisions"))
    assert await final_counts(engine, run_id) == ({},) * 2
