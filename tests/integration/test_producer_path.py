"""The producer path (SPEC §2, `loan-tapes.v1`) driven by a foreign client: aiokafka, raw JSON."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import RecordMetadata

from contracts.codec import decode, decode_union
from contracts.dead_letters import DeadLetter
from contracts.ids import event_id, loan_id, tape_run_id
from contracts.loans import IngestedBatch
from contracts.runs import RUN_EVENT, RunFailed, RunStarted, TapeIngested
from contracts.topics import DEAD_LETTERS, LOAN_TAPES, LOANS_INGESTED, RUNS
from services.common.metrics import REGISTRY
from services.ingest.main import build_app
from services.ingest.settings import IngestSettings
from services.ingest.spool import Spool, expired_message

pytestmark = pytest.mark.integration

COLUMNS = ("Seller Loan Number", "Loan Amount", "Note Rate", "Property Type", "State")


class Watcher:
    """Reads run events, ingested batches and dead letters from the beginning of their topics."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.run_events: list[Any] = []
        self.batches: list[IngestedBatch] = []
        self.dead_letters: list[DeadLetter] = []
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
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

    async def until(self, done: Callable[[], bool], timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                for records in (await self.consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        self._keep(record.topic, record.value)

    def _keep(self, topic: str, value: bytes) -> None:
        if topic == self.settings.topic(RUNS):
            self.run_events.append(decode_union(value, RUN_EVENT))
        elif topic == self.settings.topic(LOANS_INGESTED):
            self.batches.append(decode(value, IngestedBatch))
        else:
            self.dead_letters.append(decode(value, DeadLetter))

    def events(self, run_id: UUID, kind: type) -> list[Any]:
        return [e for e in self.run_events if e.run_id == run_id and isinstance(e, kind)]

    def ended(self, run_id: UUID, count: int = 1) -> Callable[[], bool]:
        return lambda: (
            len(self.events(run_id, TapeIngested) + self.events(run_id, RunFailed)) >= count
        )

    def dead_letter(self, sent: RecordMetadata) -> DeadLetter | None:
        found = [
            letter
            for letter in self.dead_letters
            if (letter.partition, letter.offset) == (sent.partition, sent.offset)
        ]
        return found[0] if found else None

    def loans(self, run_id: UUID) -> list[Any]:
        batches = {batch.batch_seq: batch for batch in self.batches if batch.run_id == run_id}
        return [event.loan for seq in sorted(batches) for event in batches[seq].events]


class ForeignProducer:
    """A producer that is not ours: stdlib JSON, a plain aiokafka client, the SPEC's shapes."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)

    async def raw(self, key: str, value: bytes) -> RecordMetadata:
        return await self.producer.send_and_wait(self.topic, value=value, key=key.encode())

    async def row(self, tape_id: str, row: int, cells: tuple[str, ...]) -> RecordMetadata:
        message = {
            "kind": "row",
            "tape_id": tape_id,
            "row": row,
            "fields": dict(zip(COLUMNS, cells, strict=True)),
        }
        return await self.raw(tape_id, json.dumps(message).encode())

    async def end(self, tape_id: str, rows: int) -> RecordMetadata:
        # The number is written as JSON text exactly as SPEC shows it (no float in the test).
        text = (
            f'{{"kind": "end", "tape_id": {json.dumps(tape_id)}, "rows": {rows}, '
            '"pdate": "2026-11-23", "irr_target": 8.05, "sales_team_id": null}'
        )
        return await self.raw(tape_id, text.encode())


@pytest.fixture
def settings_for(
    kafka_bootstrap_servers: str, module_topic_prefix: str, tmp_path: Path
) -> Callable[[str], IngestSettings]:
    def make(state: str) -> IngestSettings:
        return IngestSettings(
            kafka_bootstrap_servers=kafka_bootstrap_servers,
            topic_prefix=module_topic_prefix,
            storage_root=tmp_path / "storage",
            state_dir=tmp_path / state,
            loan_batch_size=2,
            runs_group=f"ingest-{module_topic_prefix}",
            tapes_group=f"ingest-tapes-{module_topic_prefix}",
            http_port=0,
        )

    return make


class IngestApps:
    """Ingest services started in-process for one test; whatever still runs stops at the end."""

    def __init__(self) -> None:
        self.running: list[Any] = []

    async def start(self, settings: IngestSettings) -> Any:
        app = build_app(settings)
        await app.start()
        self.running.append(app)
        return app

    async def stop(self, app: Any) -> None:
        self.running.remove(app)
        await app.stop()


@pytest.fixture
async def apps() -> AsyncIterator[IngestApps]:
    apps = IngestApps()
    try:
        yield apps
    finally:
        for app in list(apps.running):
            await apps.stop(app)


@pytest.fixture
async def watcher(settings_for: Callable[[str], IngestSettings]) -> AsyncIterator[Watcher]:
    watcher = Watcher(settings_for("watcher"))
    await watcher.start()
    try:
        yield watcher
    finally:
        await watcher.consumer.stop()


@pytest.fixture
async def producer(settings_for: Callable[[str], IngestSettings]) -> AsyncIterator[ForeignProducer]:
    settings = settings_for("producer")
    producer = ForeignProducer(settings.kafka_bootstrap_servers, settings.topic(LOAN_TAPES))
    await producer.producer.start()
    try:
        yield producer
    finally:
        await producer.producer.stop()


ROWS = {
    1: ("L-1", "$100,000", "6.5", "SFR", "CA"),
    2: ("L-2", "200000", "7.25", "condo", "NY"),
    3: ("", " ", "", "", ""),
    4: ("L-1", "50000", "6", "PUD", "TX"),
}


async def test_a_foreign_producers_tape_becomes_one_run_whatever_the_order_and_repeats(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    settings = settings_for("state")
    await apps.start(settings)
    tape_id = f"T-{uuid4().hex[:8]}"
    run_id = tape_run_id(tape_id)
    await producer.row(tape_id, 3, ROWS[3])
    await producer.row(tape_id, 2, ROWS[2])
    bad = await producer.raw(tape_id, b'{"kind": "row", "tape_id": ')
    await producer.row(tape_id, 4, ROWS[4])
    await producer.row(tape_id, 1, ROWS[1])
    await producer.row(tape_id, 2, ROWS[2])  # re-sent: harmless
    end = await producer.end(tape_id, 4)

    await watcher.until(watcher.ended(run_id))

    (started,) = watcher.events(run_id, RunStarted)
    assert started.source.kind == "tape" and started.source.location == tape_id
    assert started.created_at == datetime.fromtimestamp(end.timestamp / 1000, UTC)
    assert started.params.irr_target == Decimal("8.05")
    (ingested,) = watcher.events(run_id, TapeIngested)
    assert ingested.files == (f"{tape_id}.csv",)
    assert (ingested.total_loans, ingested.duplicates) == (3, 1)
    assert ingested.total_balance == Decimal("350000")
    loans = watcher.loans(run_id)
    assert [loan.row for loan in loans] == [1, 2, 4]
    assert loans[0].loan_id == loan_id(run_id, f"{tape_id}.csv", 1)
    assert loans[0].fields.loan_amount == "100000"
    assert loans[1].extra == {"state": "NY"}
    assert loans[2].duplicate_of is not None and loans[2].duplicate_of.row == 1
    archived = settings.storage_root / "archive" / str(run_id) / "input" / f"{tape_id}.csv"
    assert archived.read_text(encoding="utf-8").splitlines()[:2] == [
        ",".join(COLUMNS),
        'L-1,"$100,000",6.5,SFR,CA',
    ]
    await watcher.until(lambda: watcher.dead_letter(bad) is not None)
    letter = watcher.dead_letter(bad)
    assert letter is not None
    assert letter.service == "ingest" and "not a valid tape message" in letter.reason
    assert letter.payload == '{"kind": "row", "tape_id": '


async def test_a_tape_with_rows_that_never_arrived_fails_naming_them(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    await apps.start(settings_for("state"))
    tape_id = f"T-{uuid4().hex[:8]}"
    run_id = tape_run_id(tape_id)
    await producer.row(tape_id, 1, ROWS[1])
    await producer.row(tape_id, 4, ROWS[4])
    await producer.end(tape_id, 5)

    await watcher.until(watcher.ended(run_id))

    assert len(watcher.events(run_id, RunStarted)) == 1
    (failed,) = watcher.events(run_id, RunFailed)
    assert failed.phase == "ingest"
    assert failed.error == (
        f"tape {tape_id!r} is incomplete: its end marker says 5 rows but "
        "3 did not arrive (rows 2, 3, 5)"
    )
    assert watcher.loans(run_id) == []


async def test_messages_that_break_the_contract_are_dead_lettered_and_never_block(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    await apps.start(settings_for("state"))
    tape_id = f"T-{uuid4().hex[:8]}"
    wrong_key = await producer.raw(
        "someone-else",
        json.dumps({"kind": "row", "tape_id": tape_id, "row": 9, "fields": {}}).encode(),
    )
    invalid = await producer.raw(
        tape_id, json.dumps({"kind": "row", "tape_id": tape_id, "row": 0, "fields": {}}).encode()
    )
    not_json = await producer.raw(tape_id, b"\xff\xfe not json")
    # Valid to the schema, but no tape has row 2**63 (nor could the spool store it) ...
    beyond = await producer.raw(
        tape_id,
        json.dumps({"kind": "row", "tape_id": tape_id, "row": 2**63, "fields": {}}).encode(),
    )
    # ... nor can a 300-character tape id name a file.
    long_id = "T" * 300
    too_long = await producer.row(long_id, 1, ROWS[1])
    await producer.row(tape_id, 1, ROWS[1])
    await producer.end(tape_id, 1)

    await watcher.until(watcher.ended(tape_run_id(tape_id)))
    sent = (wrong_key, invalid, not_json, beyond, too_long)
    await watcher.until(lambda: all(watcher.dead_letter(record) for record in sent))

    reasons = [letter.reason for record in sent if (letter := watcher.dead_letter(record))]
    assert "is not the tape id" in reasons[0]
    assert "greater than or equal to 1" in reasons[1]
    assert "not a valid tape message" in reasons[2]
    assert reasons[3].endswith(
        f"row {2**63} is beyond the 5000000 rows a tape may have (INGEST_MAX_ROWS)"
    )
    assert reasons[4].endswith("tape id is longer than 200 bytes, so it cannot name a file")
    letter = watcher.dead_letter(not_json)
    assert letter is not None and letter.payload.startswith("b64:")
    (ingested,) = watcher.events(tape_run_id(tape_id), TapeIngested)
    assert ingested.total_loans == 1


async def test_an_end_marker_counting_more_rows_than_a_tape_may_have_is_dead_lettered(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    await apps.start(settings_for("state"))
    absurd, after = f"T-{uuid4().hex[:8]}", f"T-{uuid4().hex[:8]}"
    await producer.row(absurd, 1, ROWS[1])
    end = await producer.end(absurd, 2**63)
    await producer.row(after, 1, ROWS[1])
    await producer.end(after, 1)

    await watcher.until(watcher.ended(tape_run_id(after)))
    await watcher.until(lambda: watcher.dead_letter(end) is not None)

    letter = watcher.dead_letter(end)
    assert letter is not None and letter.reason.endswith(
        f"end marker counts {2**63} beyond the 5000000 rows a tape may have (INGEST_MAX_ROWS)"
    )
    assert watcher.events(tape_run_id(absurd), RunStarted) == []
    assert len(watcher.events(tape_run_id(after), TapeIngested)) == 1
    # The producer corrects its end marker: the tape, still open, completes.
    await producer.end(absurd, 1)
    await watcher.until(watcher.ended(tape_run_id(absurd)))
    assert len(watcher.events(tape_run_id(absurd), TapeIngested)) == 1


async def test_a_row_holding_a_nul_character_fails_its_run_naming_row_and_column(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    await apps.start(settings_for("state"))
    tape_id = f"T-{uuid4().hex[:8]}"
    await producer.row(tape_id, 1, ROWS[1])
    await producer.row(tape_id, 2, ("L-\x002", "1", "1", "SFR", "CA"))
    await producer.end(tape_id, 2)

    await watcher.until(watcher.ended(tape_run_id(tape_id)))

    (failed,) = watcher.events(tape_run_id(tape_id), RunFailed)
    assert failed.error == (
        f"{tape_id}.csv: row 2, column 'Seller Loan Number' holds a NUL character, not text"
    )
    assert watcher.loans(tape_run_id(tape_id)) == []


async def test_the_tape_consumer_reads_records_again_after_an_unexpected_failure(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failures = iter([RuntimeError("disk hiccup")])
    original = Spool.add

    def add_failing_once(self: Spool, *args: Any, **kwargs: Any) -> Any:
        if (failure := next(failures, None)) is not None:
            raise failure
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Spool, "add", add_failing_once)
    await apps.start(settings_for("state"))
    tape_id = f"T-{uuid4().hex[:8]}"
    await producer.row(tape_id, 1, ROWS[1])
    await producer.end(tape_id, 1)

    await watcher.until(watcher.ended(tape_run_id(tape_id)))

    assert len(watcher.events(tape_run_id(tape_id), TapeIngested)) == 1
    assert next(failures, None) is None


async def test_pushing_the_same_tape_twice_is_one_run_with_the_same_events(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    await apps.start(settings_for("state"))
    tape_id = f"T-{uuid4().hex[:8]}"
    run_id = tape_run_id(tape_id)
    for _ in range(2):
        await producer.row(tape_id, 1, ROWS[1])
        await producer.row(tape_id, 2, ROWS[2])
        await producer.end(tape_id, 2)

    await watcher.until(watcher.ended(run_id, count=2))

    first, second = watcher.events(run_id, RunStarted)
    assert (first.event_id, first.created_at) == (second.event_id, second.created_at)
    one, two = watcher.events(run_id, TapeIngested)
    assert one.event_id == two.event_id == event_id("run.tape_ingested", run_id, 1)
    assert one.total_loans == two.total_loans == 2


async def test_a_lost_spool_is_rebuilt_from_the_topic_because_open_tapes_hold_the_commit_back(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    first_settings = settings_for("first-state")
    app = await apps.start(first_settings)
    tape_id = f"T-{uuid4().hex[:8]}"
    run_id = tape_run_id(tape_id)
    first_row = await producer.row(tape_id, 1, ROWS[1])
    second_row = await producer.row(tape_id, 2, ROWS[2])
    partition = TopicPartition(first_settings.topic(LOAN_TAPES), first_row.partition)
    # Another tape on the same partition ends after ours opened: the commit still stays behind.
    other = f"{tape_id}-other"
    while (await producer.row(other, 1, ROWS[1])).partition != first_row.partition:
        other += "x"
    await producer.end(other, 1)
    await watcher.until(watcher.ended(tape_run_id(other)))
    await until_committed(first_settings, partition, first_row.offset)

    await apps.stop(app)  # the machine is lost: so is its spool
    await apps.start(settings_for("second-state"))
    await producer.end(tape_id, 2)

    await watcher.until(watcher.ended(run_id))
    (ingested,) = watcher.events(run_id, TapeIngested)
    assert ingested.total_loans == 2
    assert second_row.offset > first_row.offset


async def test_a_tape_whose_end_marker_never_comes_expires_and_may_be_pushed_again(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    settings = settings_for("state").model_copy(update={"open_tape_ttl_seconds": 1})
    expired_before = REGISTRY.get_sample_value("loan_engine_tapes_expired_total") or 0
    app = await apps.start(settings)
    tape_id = f"T-{uuid4().hex[:8]}"
    run_id = tape_run_id(tape_id)
    await producer.row(tape_id, 1, ROWS[1])
    last_row = await producer.row(tape_id, 2, ROWS[2])
    partition = TopicPartition(settings.topic(LOAN_TAPES), last_row.partition)

    # Nothing else arrives on the partition: only the expiry can move the commit past the tape.
    await until_committed(settings, partition, last_row.offset + 1)
    spool = Spool(settings.spool_path)
    try:
        assert list(spool.rows(tape_id)) == []
        expired = spool.expired(tape_id)
    finally:
        spool.close()
    assert expired is not None and expired.ttl_seconds == 1
    assert (REGISTRY.get_sample_value("loan_engine_tapes_expired_total") or 0) > expired_before

    late_end = await producer.end(tape_id, 2)
    await watcher.until(watcher.ended(run_id))
    (failed,) = watcher.events(run_id, RunFailed)
    assert failed.phase == "ingest"
    assert failed.error == expired_message(expired)
    assert failed.error.startswith(
        f"tape {tape_id!r} expired after 1 second without an end marker ("
    )
    assert failed.error.endswith("push the tape again: all of its rows, then its end marker")
    await until_committed(settings, partition, late_end.offset + 1)

    await apps.stop(app)  # a TTL long enough for the new push to reach its end marker
    await apps.start(settings_for("state"))
    await producer.row(tape_id, 2, ROWS[2])
    await producer.row(tape_id, 1, ROWS[1])
    await producer.end(tape_id, 2)

    await watcher.until(lambda: bool(watcher.events(run_id, TapeIngested)))
    (ingested,) = watcher.events(run_id, TapeIngested)
    assert ingested.total_loans == 2
    assert [started.attempt for started in watcher.events(run_id, RunStarted)] == [1, 2]
    assert [loan.row for loan in watcher.loans(run_id)] == [1, 2]


async def until_committed(
    settings: IngestSettings, partition: TopicPartition, offset: int, timeout: float = 30
) -> None:
    """Wait until the tape consumer group has committed exactly `offset` on `partition`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        async with asyncio.timeout(timeout):
            while True:
                offsets = await admin.list_consumer_group_offsets(settings.tapes_group)
                found = offsets.get(partition)
                if found is not None and found.offset == offset:
                    return
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def test_a_completed_tape_pushed_again_with_other_content_is_dead_lettered_not_mixed(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    await apps.start(settings_for("state"))
    tape_id = f"T-{uuid4().hex[:8]}"
    run_id = tape_run_id(tape_id)
    await producer.row(tape_id, 1, ROWS[1])
    await producer.row(tape_id, 2, ROWS[2])
    await producer.end(tape_id, 2)
    await watcher.until(watcher.ended(run_id))

    # The second push keeps row 1 but has another row 2 and a third row.
    await producer.row(tape_id, 1, ROWS[1])
    changed = await producer.row(tape_id, 2, ("L-2", "999999", "7.25", "condo", "NY"))
    third = await producer.row(tape_id, 3, ROWS[4])
    second_end = await producer.end(tape_id, 3)
    sent = (changed, third, second_end)
    await watcher.until(lambda: all(watcher.dead_letter(record) for record in sent))

    reasons = [letter.reason for record in sent if (letter := watcher.dead_letter(record))]
    assert all("push it under a new tape id" in reason for reason in reasons)
    assert "differs from the row the tape completed with" in reasons[0]
    assert "came after its end marker" in reasons[1] and "with 2 rows" in reasons[1]
    assert f"already completed as run {run_id}" in reasons[2]
    (ingested,) = watcher.events(run_id, TapeIngested)
    assert (ingested.total_loans, ingested.total_balance) == (2, Decimal("300000"))
    assert watcher.events(run_id, RunFailed) == []

    # The same tape under a new id is a new run.
    new_id = f"{tape_id}-b"
    await producer.row(new_id, 1, ROWS[1])
    await producer.end(new_id, 1)
    await watcher.until(watcher.ended(tape_run_id(new_id)))
    assert len(watcher.events(tape_run_id(new_id), TapeIngested)) == 1


async def test_a_row_sent_after_its_tapes_end_marker_is_dead_lettered(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    await apps.start(settings_for("state"))
    tape_id = f"T-{uuid4().hex[:8]}"
    await producer.row(tape_id, 1, ROWS[1])
    await producer.end(tape_id, 1)
    late = await producer.row(tape_id, 2, ROWS[2])

    # The late row's dead letter may come before the tape's run has published its events.
    await watcher.until(watcher.ended(tape_run_id(tape_id)))
    await watcher.until(lambda: watcher.dead_letter(late) is not None)

    letter = watcher.dead_letter(late)
    assert letter is not None and "came after its end marker" in letter.reason
    assert len(watcher.events(tape_run_id(tape_id), TapeIngested)) == 1


async def test_a_row_number_pushed_twice_with_different_fields_is_dead_lettered(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    await apps.start(settings_for("state"))
    tape_id = f"T-{uuid4().hex[:8]}"
    run_id = tape_run_id(tape_id)
    await producer.row(tape_id, 1, ROWS[1])
    again = await producer.row(tape_id, 1, ("L-9", "1", "1", "SFR", "CA"))
    await producer.row(tape_id, 1, ROWS[1])  # the same row again is a harmless repeat
    await producer.end(tape_id, 1)

    await watcher.until(watcher.ended(run_id))
    await watcher.until(lambda: watcher.dead_letter(again) is not None)

    letter = watcher.dead_letter(again)
    assert letter is not None and "was already pushed with different fields" in letter.reason
    assert [loan.fields.seller_loan_number for loan in watcher.loans(run_id)] == ["L-1"]


async def test_rows_with_120_kb_cells_pass_in_batches_cut_by_size(
    settings_for: Callable[[str], IngestSettings],
    apps: IngestApps,
    producer: ForeignProducer,
    watcher: Watcher,
) -> None:
    settings = settings_for("state").model_copy(update={"loan_batch_size": 500})
    await apps.start(settings)
    tape_id = f"T-{uuid4().hex[:8]}"
    run_id = tape_run_id(tape_id)
    note = "n" * 120 * 1024
    for number in range(1, 301):
        await producer.row(tape_id, number, (f"L-{number}", "100000", "6.5", "SFR", note))
    await producer.end(tape_id, 300)

    await watcher.until(watcher.ended(run_id), timeout=180)

    assert watcher.events(run_id, RunFailed) == []
    (ingested,) = watcher.events(run_id, TapeIngested)
    assert ingested.total_loans == 300 and ingested.batch_count > 1
    batches = sorted(batch.batch_seq for batch in watcher.batches if batch.run_id == run_id)
    assert batches == list(range(ingested.batch_count))
    assert [loan.row for loan in watcher.loans(run_id)] == list(range(1, 301))
