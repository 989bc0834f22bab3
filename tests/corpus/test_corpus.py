"""The bad-input corpus (`manifest.toml`) through a real broker: every case gives a clear error or
a dead letter, its run fails once instead of hanging, and a good tape right after completes."""

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata

from contracts.codec import decode, decode_union
from contracts.dead_letters import DeadLetter
from contracts.ids import event_id, tape_run_id
from contracts.loans import IngestedBatch, RunParams
from contracts.runs import RUN_EVENT, RunFailed, RunRequested, RunStarted, TapeIngested
from contracts.topics import DEAD_LETTERS, LOAN_TAPES, LOANS_INGESTED, RUNS
from services.common.kafka import KafkaPublisher
from services.ingest.main import build_app
from services.ingest.settings import IngestSettings
from tests.corpus.build import build, good_csv

CORPUS = Path(__file__).parent
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "manifest.toml").read_text())["case"]
PARAMS = RunParams(irr_target=Decimal("8.05"), pdate=date(2026, 11, 23))
CREATED = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
COLUMNS = ("Seller Loan Number", "Loan Amount", "Note Rate", "Property Type", "Notes")
GOOD_ROW = ("L-1", "250000", "6.5", "SFR", "")

pytestmark = pytest.mark.integration


def case_params() -> list[Any]:
    return [
        pytest.param(case, id=case["name"], marks=[pytest.mark.slow] if case.get("slow") else [])
        for case in CASES
    ]


class Watcher:
    """Reads run events, ingested batches and dead letters from the start of their topics."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.run_events: list[Any] = []
        self.batches: list[tuple[UUID, int]] = []
        self.dead_letters: list[DeadLetter] = []
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            enable_auto_commit=False,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=32 * 1024 * 1024,
        )

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [
            TopicPartition(self.settings.topic(topic), number)
            for topic in (RUNS, LOANS_INGESTED, DEAD_LETTERS)
            for number in range(topic.partitions)
        ]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)

    async def until(self, done: Callable[[], bool], timeout: float = 120) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                for records in (await self.consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        self._keep(record.topic, record.value)

    def _keep(self, topic: str, value: bytes) -> None:
        if topic == self.settings.topic(RUNS):
            self.run_events.append(decode_union(value, RUN_EVENT))
        elif topic == self.settings.topic(LOANS_INGESTED):
            batch = decode(value, IngestedBatch)
            self.batches.append((batch.run_id, batch.batch_seq))
        else:
            self.dead_letters.append(decode(value, DeadLetter))

    def events(self, run_id: UUID, kind: type) -> list[Any]:
        return [e for e in self.run_events if e.run_id == run_id and isinstance(e, kind)]

    def ended(self, run_id: UUID) -> Callable[[], bool]:
        return lambda: bool(self.events(run_id, TapeIngested) + self.events(run_id, RunFailed))

    def batch_count(self, run_id: UUID) -> int:
        return len({seq for run, seq in self.batches if run == run_id})

    def dead_letter(self, sent: RecordMetadata) -> DeadLetter | None:
        found = [
            letter
            for letter in self.dead_letters
            if (letter.topic, letter.partition, letter.offset)
            == (sent.topic, sent.partition, sent.offset)
        ]
        return found[0] if found else None


class Producer:
    """A foreign producer: stdlib JSON and a plain aiokafka client (records up to 32 MiB)."""

    def __init__(self, settings: IngestSettings) -> None:
        self.topic = settings.topic(LOAN_TAPES)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, max_request_size=32 * 1024**2
        )

    async def raw(self, key: str, value: bytes) -> RecordMetadata:
        return await self.producer.send_and_wait(self.topic, value=value, key=key.encode())

    async def row(self, tape_id: str, row: int, cells: tuple[str, ...]) -> RecordMetadata:
        fields = dict(zip(COLUMNS, cells, strict=True))
        message = {"kind": "row", "tape_id": tape_id, "row": row, "fields": fields}
        return await self.raw(tape_id, json.dumps(message).encode())

    async def end(self, tape_id: str, rows: int) -> RecordMetadata:
        text = (
            f'{{"kind": "end", "tape_id": {json.dumps(tape_id)}, "rows": {rows}, '
            '"pdate": "2026-11-23", "irr_target": 8.05, "sales_team_id": null}'
        )
        return await self.raw(tape_id, text.encode())


@pytest.fixture(scope="module")
def settings(
    kafka_bootstrap_servers: str, module_topic_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> IngestSettings:
    root = tmp_path_factory.mktemp("corpus")
    return IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        topic_prefix=module_topic_prefix,
        storage_root=root / "storage",
        state_dir=root / "state",
        work_dir=root / "work",
        # Groups of its own: another session's ingest on the shared broker never rebalances it.
        runs_group=f"ingest-{module_topic_prefix}",
        tapes_group=f"ingest-tapes-{module_topic_prefix}",
        http_port=0,
    )


@pytest.fixture(scope="module")
async def ingest(settings: IngestSettings) -> AsyncIterator[Any]:
    app = build_app(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture(scope="module")
async def watcher(settings: IngestSettings) -> AsyncIterator[Watcher]:
    watcher = Watcher(settings)
    await watcher.start()
    try:
        yield watcher
    finally:
        await watcher.consumer.stop()


@pytest.fixture(scope="module")
async def publisher(settings: IngestSettings) -> AsyncIterator[KafkaPublisher]:
    async with KafkaPublisher(settings) as publisher:
        yield publisher


@pytest.fixture(scope="module")
async def producer(settings: IngestSettings) -> AsyncIterator[Producer]:
    producer = Producer(settings)
    await producer.producer.start()
    try:
        yield producer
    finally:
        await producer.producer.stop()


async def request_run(settings: IngestSettings, publisher: KafkaPublisher, source: Path) -> UUID:
    """Copy a file into a new folder of the inputs area and request a run over it."""
    folder = f"corpus-{uuid4().hex[:8]}"
    target = settings.storage_root / "inputs" / folder
    target.mkdir(parents=True)
    # Built files can be large: move them; committed ones are copied.
    if source.parent.name == "built":
        source.rename(target / source.name)
    else:
        (target / source.name).write_bytes(source.read_bytes())
    run_id = uuid4()
    request = RunRequested(
        event_id=event_id("run.requested", run_id),
        run_id=run_id,
        occurred_at=CREATED,
        producer="corpus",
        params=PARAMS,
        folder=folder,
        created_at=CREATED,
    )
    await publisher.publish(RUNS, str(run_id), request)
    return run_id


async def play(scenario: str, producer: Producer, watcher: Watcher) -> tuple[Any, UUID | None]:
    """Push a producer case: what was sent that must be dead-lettered or refused, and the run."""
    tape_id = f"corpus-{scenario}-{uuid4().hex[:8]}"
    run_id = tape_run_id(tape_id)
    match scenario:
        case "invalid-json":
            return await producer.raw(tape_id, b'{"kind": "row", "tape_id": '), None
        case "key-not-tape-id":
            message = {"kind": "row", "tape_id": tape_id, "row": 1, "fields": {"A": "1"}}
            return await producer.raw("someone-else", json.dumps(message).encode()), None
        case "missing-rows":
            await producer.row(tape_id, 1, GOOD_ROW)
            await producer.row(tape_id, 3, GOOD_ROW)
            await producer.end(tape_id, 3)
            return None, run_id
        case "row-after-end":
            await producer.row(tape_id, 1, GOOD_ROW)
            await producer.end(tape_id, 1)
            return await producer.row(tape_id, 2, GOOD_ROW), None
        case "repush-different":
            await producer.row(tape_id, 1, GOOD_ROW)
            await producer.end(tape_id, 1)
            await watcher.until(watcher.ended(run_id))
            return await producer.end(tape_id, 2), None
        case "row-twice":
            await producer.row(tape_id, 1, GOOD_ROW)
            twice = await producer.row(tape_id, 1, ("L-2", "1", "1", "SFR", ""))
            await producer.end(tape_id, 1)
            return twice, run_id
        case "twenty-mb-message":
            message = {
                "kind": "row",
                "tape_id": tape_id,
                "row": 1,
                "fields": {"A": "x" * 20_000_000},
            }
            try:
                await producer.raw(tape_id, json.dumps(message).encode())
            except Exception as error:
                return error, None
            return None, None
        case "big-cells":
            note = "n" * 120 * 1024
            for number in range(1, 301):
                await producer.row(tape_id, number, (f"L-{number}", "1", "1", "SFR", note))
            await producer.end(tape_id, 300)
            return None, run_id
    raise AssertionError(f"no such producer scenario: {scenario}")


async def assert_still_healthy(
    ingest: Any,
    settings: IngestSettings,
    publisher: KafkaPublisher,
    producer: Producer,
    watcher: Watcher,
    tmp_path: Path,
) -> None:
    """A good file and a good producer tape right after both complete; readiness answers 200."""
    good = tmp_path / "good.csv"
    good_csv(good)
    run_id = await request_run(settings, publisher, good)
    tape_id = f"corpus-good-{uuid4().hex[:8]}"
    await producer.row(tape_id, 1, GOOD_ROW)
    await producer.end(tape_id, 1)
    await watcher.until(lambda: watcher.ended(run_id)() and watcher.ended(tape_run_id(tape_id))())
    assert len(watcher.events(run_id, TapeIngested)) == 1
    assert len(watcher.events(tape_run_id(tape_id), TapeIngested)) == 1
    transport = httpx.ASGITransport(app=ingest)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        assert (await client.get("/health/ready")).status_code == 200


@pytest.mark.parametrize("case", case_params())
async def test_a_bad_input_gets_a_clear_outcome_and_ingest_stays_healthy(
    case: dict[str, Any],
    ingest: Any,
    settings: IngestSettings,
    publisher: KafkaPublisher,
    producer: Producer,
    watcher: Watcher,
    tmp_path: Path,
) -> None:
    if "file" in case:
        if case.get("build"):
            (tmp_path / "built").mkdir()
            source = build(case["file"], tmp_path / "built")
        else:
            source = CORPUS / "files" / case["file"]
        run_id = await request_run(settings, publisher, source)

        await watcher.until(watcher.ended(run_id))

        assert len(watcher.events(run_id, RunStarted)) == 1
        (failed,) = watcher.events(run_id, RunFailed)
        assert failed.phase == "ingest"
        assert case["error"] in failed.error
        assert watcher.batch_count(run_id) == 0  # nothing published before the failure
    else:
        sent, run_id = await play(case["producer"], producer, watcher)
        if "dead_letter" in case:
            await watcher.until(lambda: watcher.dead_letter(sent) is not None)
            letter = watcher.dead_letter(sent)
            assert letter is not None and case["dead_letter"] in letter.reason
        if "refused" in case:
            assert case["refused"] in type(sent).__name__
        if run_id is not None:
            await watcher.until(watcher.ended(run_id))
            failures = [event.error for event in watcher.events(run_id, RunFailed)]
            if "error" in case:
                assert len(failures) == 1 and case["error"] in failures[0]
            else:
                assert failures == []
                assert len(watcher.events(run_id, TapeIngested)) == 1

    await assert_still_healthy(ingest, settings, publisher, producer, watcher, tmp_path)
