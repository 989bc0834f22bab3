"""The review job that opens cases, through a real broker, projector and database: a gateway reads
every scored batch's loans once, then only the batches that may lack a case (new ones, ones
delivered again), every batch again after a replay or a rebuild, and a restarted gateway every
batch once more.

A lagging projector leaves the batches it has not caught up with lacking cases: each is read
again once per GATEWAY_REVIEW_REPUBLISH_SECONDS, as each of its loans is published again.

A case deleted here stands for one the read models lost: a gateway that has seen its batch with
every case does not look for it again (the old job did, on every tick, by scanning every scored
loan), a restarted one does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

import asyncpg
import pytest
from conftest import RunningProjector, gateway_settings
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.ids import batch_key
from contracts.topics import LOANS_SCORED
from services.common.kafka import KafkaPublisher
from services.gateway.db import connect, make_engine, migrate
from services.gateway.review.jobs import ReviewJobs
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.gateway_events import RunScenario
from tests.unit.gateway.review_events import scored_batches, scored_messages

pytestmark = pytest.mark.integration
T = TypeVar("T")


@dataclass(frozen=True)
class Desk:
    """A scored run with every case opened and folded, and what a gateway's jobs are made of."""

    settings: GatewaySettings
    projector: RunningProjector
    sessionmaker: async_sessionmaker[AsyncSession]
    publisher: KafkaPublisher
    conn: asyncpg.Connection
    run: RunScenario

    def gateway(self) -> ReviewJobs:
        """A gateway process's review jobs, started afresh."""
        return ReviewJobs(self.sessionmaker, self.publisher, self.settings)


def human_reviews(scenario: RunScenario) -> int:
    return sum(
        1
        for batch in scored_batches(scenario)
        for event in batch.events
        if event.routing.decision == "human_review"
    )


async def wait_for(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 120
) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if done(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.2)


async def scored(desk: Desk, scenario: RunScenario) -> None:
    """Publish a run's scored batches and wait until they are folded."""
    for topic, key, batch in scored_messages(scenario):
        await desk.publisher.publish(topic, key, batch)
    query = "SELECT count(*) FROM gateway.loan_scores WHERE run_id = $1"
    rows = await wait_for(
        lambda: desk.conn.fetchval(query, scenario.run_id), lambda n: n == scenario.loans
    )
    assert rows == scenario.loans


async def cases_folded(desk: Desk, scenario: RunScenario) -> None:
    query = "SELECT count(*) FROM gateway.review_cases WHERE run_id = $1"
    expected = human_reviews(scenario)
    cases = await wait_for(
        lambda: desk.conn.fetchval(query, scenario.run_id), lambda n: n == expected
    )
    assert cases == expected


@asynccontextmanager
async def lost_case(desk: Desk, batch_seq: int, nth: int = 0) -> AsyncIterator[UUID]:
    """The case of the `nth` `human_review` loan of the run's batch gone from the read models
    (put back afterwards: its opening, published again, is a duplicate the fold skips)."""
    row = await desk.conn.fetchrow(
        "DELETE FROM gateway.review_cases WHERE case_id = ("
        " SELECT c.case_id FROM gateway.review_cases c JOIN gateway.scored_batches b"
        " ON b.run_id = c.run_id AND c.seq BETWEEN b.first_seq AND b.last_seq"
        " WHERE b.run_id = $1 AND b.batch_seq = $2 ORDER BY c.seq LIMIT 1 OFFSET $3)"
        " RETURNING *",
        desk.run.run_id,
        batch_seq,
        nth,
    )
    assert row is not None
    try:
        yield row["loan_id"]
    finally:
        columns = list(row.keys())
        await desk.conn.execute(
            f"INSERT INTO gateway.review_cases ({', '.join(columns)}) VALUES "
            f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))})",
            *row.values(),
        )


@pytest.fixture(scope="module")
async def desk(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Desk]:
    settings = gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        module_topic_prefix,
        tmp_path_factory.mktemp("opening-storage"),
        review_jobs_enabled=False,
    )
    await migrate(settings)
    projector = RunningProjector(settings)
    await projector.start()
    engine = make_engine(settings)
    conn = await connect(settings)
    run = RunScenario(loans=60, batch_size=20)
    try:
        async with KafkaPublisher(settings) as publisher:
            desk = Desk(settings, projector, async_sessionmaker(engine), publisher, conn, run)
            await scored(desk, run)
            assert {batch.batch_seq for batch in scored_batches(run)} == {0, 1, 2}
            assert all(
                any(event.routing.decision == "human_review" for event in batch.events)
                for batch in scored_batches(run)
            )
            assert await desk.gateway().tick() == human_reviews(run)
            await cases_folded(desk, run)
            yield desk
    finally:
        await conn.close()
        await engine.dispose()
        await projector.stop()


async def test_a_gateway_reads_every_batch_once_then_not_the_batches_seen_with_every_case(
    desk: Desk,
) -> None:
    jobs = desk.gateway()
    assert await jobs.tick() == 0  # every batch read, every case found
    async with lost_case(desk, batch_seq=1):
        assert await jobs.tick() == 0  # its batch was seen opened: not read again
        assert await jobs.tick() == 0
        assert await desk.gateway().tick() == 1  # a restarted gateway reads every batch once


async def test_a_batch_scored_after_a_tick_is_read_on_the_next_and_only_it(desk: Desk) -> None:
    jobs = desk.gateway()
    assert await jobs.tick() == 0
    later = RunScenario(loans=40, batch_size=20)
    async with lost_case(desk, batch_seq=0):
        await scored(desk, later)
        # The new run's loans are opened; the lost case of a batch seen opened is not looked for.
        assert await jobs.tick() == human_reviews(later)
        await cases_folded(desk, later)
        assert await jobs.tick() == 0


async def test_a_batch_delivered_again_is_read_again(desk: Desk) -> None:
    jobs = desk.gateway()
    assert await jobs.tick() == 0
    version = "SELECT xmin::text FROM gateway.scored_batches WHERE run_id = $1 AND batch_seq = 2"
    async with lost_case(desk, batch_seq=2) as loan_id:
        assert await jobs.tick() == 0
        before = await desk.conn.fetchval(version, desk.run.run_id)
        (again,) = [batch for batch in scored_batches(desk.run) if batch.batch_seq == 2]
        assert loan_id in {event.loan_id for event in again.events}
        await desk.publisher.publish(LOANS_SCORED, batch_key(again.run_id, 2), again)
        after = await wait_for(
            lambda: desk.conn.fetchval(version, desk.run.run_id), lambda v: v != before
        )
        assert after != before
        assert await jobs.tick() == 1  # written again (it could be scored otherwise): read again


async def test_a_replay_or_a_rebuild_since_the_last_tick_makes_a_gateway_read_every_batch_again(
    desk: Desk,
) -> None:
    jobs = desk.gateway()
    assert await jobs.tick() == 0
    async with lost_case(desk, batch_seq=0):
        assert await jobs.tick() == 0
        await desk.conn.execute("UPDATE gateway.projector_state SET replaying = true")
        try:
            assert await jobs.tick() == 0  # the jobs wait out a replay
        finally:
            await desk.conn.execute("UPDATE gateway.projector_state SET replaying = false")
        assert await jobs.tick() == 1
    rebuilt = desk.gateway()
    assert await rebuilt.tick() == 0
    async with lost_case(desk, batch_seq=1):
        assert await rebuilt.tick() == 0
        # A rebuild that began and caught up between two ticks: only its generation tells.
        await desk.conn.execute("UPDATE gateway.projector_state SET generation = generation + 1")
        assert await rebuilt.tick() == 1


async def test_a_batch_read_with_a_loan_lacking_its_case_is_not_read_again_within_the_hold(
    desk: Desk,
) -> None:
    async with lost_case(desk, batch_seq=2):
        jobs = desk.gateway()
        assert await jobs.tick() == 1  # the batch is read, its loan published
        async with lost_case(desk, batch_seq=2, nth=1):
            # Its opening not folded (here: never), the batch is held, not read every tick: the
            # second loss shows only when the hold is over, or to a gateway started afresh.
            assert await jobs.tick() == 0
            assert await desk.gateway().tick() == 2
