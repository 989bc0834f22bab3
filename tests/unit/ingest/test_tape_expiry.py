"""A producer tape whose end marker comes after it expired: its run fails, and a new push works;
and readiness says when the tape consumer has died."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.dead_letters import DeadLetter
from contracts.ids import tape_run_id
from contracts.loans import IngestedBatch
from contracts.runs import RunFailed, RunStarted, TapeIngested
from contracts.tapes import TapeEnd
from contracts.topics import RUNS, Topic
from services.common.health import NotReady
from services.common.storage import LocalStorage
from services.ingest.handlers import TapeConsumer
from services.ingest.service import IngestService
from services.ingest.settings import IngestSettings
from services.ingest.spool import Spool, SpooledRow

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
TTL = 60
TAPE = "T-1"
RUN_ID = tape_run_id(TAPE)


class RecordingPublisher:
    """Keeps every run event ingest publishes, in order, with its topic and key."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, BaseModel, dict[str, str] | None]] = []

    async def publish(
        self, topic: Topic, key: str, event: BaseModel, headers: dict[str, str] | None = None
    ) -> None:
        self.sent.append((topic.name, key, event, headers))

    @property
    def events(self) -> list[BaseModel]:
        return [event for _, _, event, _ in self.sent]

    def of(self, kind: type[BaseModel]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


async def acknowledged(_batch: IngestedBatch) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
async def service(tmp_path: Path, publisher: RecordingPublisher) -> AsyncIterator[IngestService]:
    settings = IngestSettings(
        storage_root=tmp_path / "storage",
        state_dir=tmp_path / "state",
        work_dir=tmp_path / "work",
        open_tape_ttl_seconds=TTL,
    )
    spool = Spool(settings.spool_path)
    yield IngestService(
        settings, LocalStorage(settings.storage_root), publisher, acknowledged, spool, lambda: AT
    )
    spool.close()


def push_rows(spool: Spool, first_offset: int, arrived_at: datetime = AT) -> None:
    spool.add(
        [
            SpooledRow(TAPE, number, {"Seller Loan Number": f"L-{number}"}, 0, first_offset + i)
            for i, number in enumerate((1, 2))
        ],
        arrived_at,
    )


def push_rows_and_expire(spool: Spool) -> None:
    """Rows 1 and 2 of the tape from offset 5, then its expiry on partition 0."""
    push_rows(spool, 5)
    spool.expire(AT + timedelta(seconds=TTL + 1), TTL, {0})


def end_marker() -> TapeEnd:
    return TapeEnd(tape_id=TAPE, rows=2, pdate=date(2026, 11, 23))


async def test_a_late_end_marker_fails_the_run_saying_the_tape_expired_and_must_be_pushed_again(
    service: IngestService, publisher: RecordingPublisher
) -> None:
    push_rows_and_expire(service.spool)

    await service.on_tape_end(end_marker(), 0, 9, AT)

    (started,) = publisher.of(RunStarted)
    (failed,) = publisher.of(RunFailed)
    assert started.run_id == failed.run_id == RUN_ID
    assert {(topic, key) for topic, key, _, _ in publisher.sent} == {(RUNS.name, str(RUN_ID))}
    assert failed.phase == "ingest"
    assert failed.error == (
        "tape 'T-1' expired after 60 seconds without an end marker (2 spooled rows dropped); "
        "push the tape again: all of its rows, then its end marker"
    )
    assert publisher.of(TapeIngested) == []


async def test_a_tape_pushed_again_after_it_expired_is_ingested_as_the_runs_next_attempt(
    service: IngestService, publisher: RecordingPublisher
) -> None:
    push_rows_and_expire(service.spool)
    await service.on_tape_end(end_marker(), 0, 9, AT)

    push_rows(service.spool, 10)
    await service.on_tape_end(end_marker(), 0, 12, AT)

    (ingested,) = publisher.of(TapeIngested)
    assert (ingested.run_id, ingested.total_loans) == (RUN_ID, 2)
    assert [started.attempt for started in publisher.of(RunStarted)] == [1, 2]


async def test_a_tape_never_ended_before_it_expired_is_a_fresh_run_when_pushed_again(
    service: IngestService, publisher: RecordingPublisher
) -> None:
    push_rows_and_expire(service.spool)

    push_rows(service.spool, 10)
    await service.on_tape_end(end_marker(), 0, 12, AT)

    (started,) = publisher.of(RunStarted)
    assert started.attempt == 1
    (ingested,) = publisher.of(TapeIngested)
    assert ingested.total_loans == 2


async def test_a_replayed_end_marker_closes_the_rows_its_replay_spooled_again(
    service: IngestService, publisher: RecordingPublisher
) -> None:
    push_rows(service.spool, 1)
    await service.on_tape_end(end_marker(), 0, 3, AT)
    events = list(publisher.events)

    push_rows(service.spool, 1)  # the partition is replayed from a commit behind the tape
    await service.on_tape_end(end_marker(), 0, 3, AT)

    assert publisher.events == events
    assert list(service.spool.rows(TAPE)) == []
    assert service.spool.committable(0, 4) == 4
    assert service.spool.expire(AT + timedelta(days=30), TTL, {0}) == []


async def no_dead_letters(letter: DeadLetter) -> None:
    raise AssertionError(f"unexpected dead letter: {letter.reason}")


async def test_readiness_names_the_tape_consumer_once_its_task_has_died(
    service: IngestService,
) -> None:
    consumer = TapeConsumer(service.settings, service, no_dead_letters)
    check = consumer.ready_check()
    await check.check()  # not started: nothing to say

    async def dies() -> None:
        raise RuntimeError("disk gone")

    consumer._task = asyncio.create_task(dies())
    await asyncio.gather(consumer._task, return_exceptions=True)

    with pytest.raises(NotReady, match=r"the producer-tape consumer stopped: RuntimeError\('disk"):
        await check.check()
    assert check.name == "tapes"


async def test_a_stopped_tape_consumer_is_not_a_failure(
    service: IngestService,
) -> None:
    consumer = TapeConsumer(service.settings, service, no_dead_letters)
    consumer._task = asyncio.create_task(asyncio.sleep(60))
    consumer._task.cancel()
    await asyncio.gather(consumer._task, return_exceptions=True)

    await consumer.ready_check().check()
