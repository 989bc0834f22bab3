"""The projector against the real broker and database: read models, exactly-once positions,
replay idempotency, rebuild and checksum, a rebuild noticed by a running projector, dead letters,
bulk replays without the loan tables' secondary indexes."""

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import PASSWORD, gateway_settings, publish_runs

from contracts.codec import encode
from contracts.topics import LOANS_DISPOSITIONED, RUNS
from services.common.kafka import KafkaPublisher
from services.gateway.app import create_app
from services.gateway.db import connect, migrate
from services.gateway.projector import consumer as consumer_module
from services.gateway.projector import indexes
from services.gateway.projector.consumer import Projector
from services.gateway.projector.maintenance import (
    checksum,
    end_offsets,
    rebuild,
    release_projector_lock,
    reset,
    try_projector_lock,
)
from services.gateway.projector.plan import plan
from services.gateway.projector.writer import (
    GenerationChanged,
    read_positions,
    replaying,
    write_chunk,
)
from services.gateway.runs.domain import run_order
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.gateway_events import RunScenario

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def projector_settings(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewaySettings:
    """Settings on a database of this module's own, migrated."""
    settings = gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        topic_prefix,
        tmp_path_factory.mktemp("projector-storage"),
        projector_max_records=7,
    )
    await migrate(settings)
    return settings


@pytest.fixture
async def conn(projector_settings: GatewaySettings) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(projector_settings)
    yield connection
    await connection.close()


async def catch_up(settings: GatewaySettings, conn: asyncpg.Connection) -> None:
    projector = Projector(settings, conn)
    await projector.start()
    try:
        await projector.catch_up(timeout=120)
    finally:
        await projector.stop()


async def test_published_runs_are_projected_with_positions_stored(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    team_run = RunScenario(loans=23, batch_size=5, sales_team_id="team-p")
    plain_run = RunScenario(loans=9, batch_size=4, duplicate_every=4)
    await publish_runs(projector_settings, [team_run, plain_run])
    await catch_up(projector_settings, conn)

    run = await conn.fetchrow("SELECT * FROM gateway.runs WHERE run_id = $1", team_run.run_id)
    assert run["status"] == "completed"
    assert run["sales_team_id"] == "team-p"
    assert run["total_loans"] == 23
    loans = await conn.fetch(
        "SELECT seq, disposition, sales_team_id FROM gateway.loan_facts WHERE run_id = $1 "
        "ORDER BY seq",
        team_run.run_id,
    )
    assert [row["seq"] for row in loans] == list(range(1, 24))
    assert [row["disposition"] for row in loans] == [
        e.disposition for e in team_run.dispositioned()
    ]
    exceptions = await conn.fetchval(
        "SELECT count(*) FROM gateway.loan_exceptions WHERE run_id = $1", plain_run.run_id
    )
    assert exceptions == sum(len(e.exceptions) for e in plain_run.dispositioned())
    stages = dict(
        await conn.fetch(
            "SELECT stage, sum(loan_count) FROM gateway.run_batches WHERE run_id = $1 "
            "GROUP BY stage",
            team_run.run_id,
        )
    )
    assert stages == {"ingested": 23, "evaluated": 23, "priced": 23, "dispositioned": 23}
    reports = await conn.fetchval(
        "SELECT count(*) FROM gateway.report_files WHERE run_id = $1", team_run.run_id
    )
    assert reports == 4
    positions = await read_positions(conn)
    ends = {tp: end for tp, end in (await end_offsets(projector_settings)).items() if end > 0}
    assert positions == ends


async def test_replaying_duplicate_records_changes_no_read_model(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    scenario = RunScenario(loans=11, batch_size=3)
    await publish_runs(projector_settings, [scenario])
    await catch_up(projector_settings, conn)
    before = await checksum(projector_settings)
    await publish_runs(projector_settings, [scenario])
    await catch_up(projector_settings, conn)
    after = await checksum(projector_settings)
    assert after.digest == before.digest
    count = await conn.fetchval(
        "SELECT count(*) FROM gateway.loan_facts WHERE run_id = $1", scenario.run_id
    )
    assert count == 11


async def test_a_rebuild_replays_the_log_into_the_same_read_models(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    await publish_runs(projector_settings, [RunScenario(loans=17, batch_size=6)])
    await catch_up(projector_settings, conn)
    before = await checksum(projector_settings)
    assert before.tables["loan_facts"]["rows"] > 0
    result = await rebuild(projector_settings, timeout=120)
    assert result.replayed_by == "rebuild"
    after = await checksum(projector_settings)
    assert after.digest == before.digest
    assert after.tables == before.tables


async def test_a_running_projector_notices_a_rebuild_and_replays(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    await publish_runs(projector_settings, [RunScenario(loans=8, batch_size=3)])
    await catch_up(projector_settings, conn)
    before = await checksum(projector_settings)
    lock = await connect(projector_settings)
    assert await try_projector_lock(lock)
    projector = Projector(projector_settings, conn)
    await projector.start()
    stop = asyncio.Event()
    running = asyncio.create_task(projector.run(stop))
    try:
        result = await rebuild(projector_settings, timeout=120)
        assert result.replayed_by == "projector"
    finally:
        stop.set()
        await running
        await projector.stop()
        await release_projector_lock(lock)
        await lock.close()
    assert (await checksum(projector_settings)).digest == before.digest


async def test_a_chunk_read_before_a_reset_is_not_written(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    scenario = RunScenario(loans=4)
    generation = await conn.fetchval("SELECT generation FROM gateway.projector_state")
    other = await connect(projector_settings)
    try:
        await reset(other)
    finally:
        await other.close()
    with pytest.raises(GenerationChanged):
        await write_chunk(conn, plan(scenario.records()), {("t", 0): 99}, generation)
    assert (
        await conn.fetchval("SELECT count(*) FROM gateway.runs WHERE run_id = $1", scenario.run_id)
        == 0
    )
    assert ("t", 0) not in await read_positions(conn)
    await catch_up(projector_settings, conn)


async def test_an_unreadable_record_is_dead_lettered_and_the_projector_moves_on(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    good = RunScenario(loans=3)
    key = f"{uuid4()}:0"
    async with KafkaPublisher(projector_settings) as publisher:
        await publisher.publish_raw(LOANS_DISPOSITIONED, key, b'{"batch_seq": 0}')
        await publisher.publish_raw(RUNS, str(good.run_id), encode(good.run_events()[0]))
        projector = Projector(projector_settings, conn, publisher.publish_raw)
        await projector.start()
        try:
            await projector.catch_up(timeout=60)
            await asyncio.sleep(0.5)
            await projector.catch_up(timeout=60)
        finally:
            await projector.stop()
    letter = await conn.fetchrow(
        "SELECT * FROM gateway.dead_letters WHERE key = $1 AND service = 'projector'", key
    )
    assert letter is not None
    assert letter["topic"] == projector_settings.topic(LOANS_DISPOSITIONED)
    assert "missing required field `run_id`" in letter["reason"]
    status = await conn.fetchval("SELECT status FROM gateway.runs WHERE run_id = $1", good.run_id)
    assert status == "pending"


async def test_exceptions_projected_before_their_run_get_its_creation_time_later(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    scenario = RunScenario(loans=10)
    records = scenario.records()
    loans_only = [r for r in records if r.topic != RUNS.name]
    runs_only = [r for r in records if r.topic == RUNS.name]
    generation = await conn.fetchval("SELECT generation FROM gateway.projector_state")
    await write_chunk(conn, plan(loans_only), {}, generation)
    unordered = await conn.fetchval(
        "SELECT count(*) FROM gateway.loan_exceptions WHERE run_id = $1 AND run_order IS NULL",
        scenario.run_id,
    )
    assert unordered > 0
    await write_chunk(conn, plan(runs_only), {}, generation)
    rows = await conn.fetch(
        "SELECT DISTINCT created_at, run_order FROM gateway.loan_exceptions WHERE run_id = $1",
        scenario.run_id,
    )
    assert [(row["created_at"], row["run_order"]) for row in rows] == [
        (scenario.created_at, run_order(scenario.created_at))
    ]
    # Leave read models that are the log's again, for the tests that compare rebuilds.
    await publish_runs(projector_settings, [scenario])
    await rebuild(projector_settings, timeout=120)


async def test_an_admin_resets_the_projections_over_http_and_the_log_fills_them_again(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    await publish_runs(projector_settings, [RunScenario(loans=5)])
    await catch_up(projector_settings, conn)
    before = await checksum(projector_settings)
    # Without its jobs: they would raise notifications of the runs above while it is up.
    app = create_app(projector_settings.model_copy(update={"review_jobs_enabled": False}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            tokens = (
                await client.post(
                    "/api/auth/login", data={"username": "root", "password": PASSWORD}
                )
            ).json()
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            response = await client.post("/api/admin/projections/rebuild", headers=headers)
            assert response.status_code == 202
            generation = response.json()["generation"]
            status = (await client.get("/api/admin/projections", headers=headers)).json()
            assert status["generation"] == generation
            assert status["partitions_positioned"] == 0
    assert (await checksum(projector_settings)).tables["loan_facts"]["rows"] == 0
    await catch_up(projector_settings, conn)
    after = await checksum(projector_settings)
    # The login and the rebuild request are audited on audit.v1: two rows more, nothing else.
    audited = after.tables.pop("audit_log")["rows"] - before.tables.pop("audit_log")["rows"]
    assert audited == 2
    assert after.tables == before.tables


async def test_the_bulk_index_list_is_what_the_migrations_create(conn: asyncpg.Connection) -> None:
    rows = await conn.fetch(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "JOIN pg_index x ON x.indexrelid = format('%I.%I', i.schemaname, i.indexname)::regclass "
        "WHERE i.schemaname = 'gateway' AND i.tablename = ANY($1::text[]) "
        "AND NOT x.indisunique",
        list(indexes.BULK_TABLES),
    )
    assert {row["indexname"]: row["indexdef"] for row in rows} == {
        name: f"CREATE INDEX {name} {definition}"
        for name, definition in indexes.SECONDARY_INDEXES.items()
    }


async def test_a_large_replay_from_nothing_runs_without_the_secondary_indexes_and_builds_them(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    await publish_runs(projector_settings, [RunScenario(loans=30, batch_size=4)])
    await catch_up(projector_settings, conn)
    before = await checksum(projector_settings)
    await reset(conn)
    bulk = projector_settings.model_copy(update={"projector_bulk_records": 1})
    projector = Projector(bulk, conn)
    await projector.start()
    try:
        assert projector.bulk_targets
        assert await indexes.present(conn) == set()
        await projector.catch_up(timeout=120)
        assert projector.bulk_targets is None
        assert await indexes.present(conn) == set(indexes.SECONDARY_INDEXES)
    finally:
        await projector.stop()
    assert (await checksum(projector_settings)).digest == before.digest


async def test_a_rebuild_says_replaying_until_the_projector_reaches_the_log_end_it_saw(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    await publish_runs(projector_settings, [RunScenario(loans=12, batch_size=4)])
    await catch_up(projector_settings, conn)
    assert not await replaying(conn)
    await reset(conn)
    assert await replaying(conn)  # read models truncated, nothing replayed yet
    projector = Projector(projector_settings, conn)
    await projector.start()
    try:
        assert projector.replay_targets
        await projector.poll_once(timeout_ms=2_000)  # 7 records a chunk: far from the end
        assert await replaying(conn)
        await projector.catch_up(timeout=120)
        assert projector.replay_targets is None
        assert not await replaying(conn)
    finally:
        await projector.stop()


async def test_a_projector_killed_mid_replay_goes_on_saying_replaying_after_its_restart(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    await publish_runs(projector_settings, [RunScenario(loans=12, batch_size=4)])
    await reset(conn)
    first = Projector(projector_settings, conn)
    await first.start()
    await first.poll_once(timeout_ms=2_000)
    assert first.consumer is not None
    await first.consumer.stop()  # gone without finishing: positions stored, replay unfinished
    assert await read_positions(conn)
    restarted = Projector(projector_settings, conn)
    await restarted.start()
    try:
        assert await replaying(conn)
        await restarted.catch_up(timeout=120)
        assert not await replaying(conn)
    finally:
        await restarted.stop()


async def test_a_reset_that_deadlocks_with_a_reader_is_tried_again_and_succeeds(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    from services.gateway.projector.maintenance import READ_MODEL_TABLES

    first, last = READ_MODEL_TABLES[0].name, READ_MODEL_TABLES[-1].name
    before = await conn.fetchval("SELECT generation FROM gateway.projector_state")
    reader = await connect(projector_settings)
    try:
        # The reader never detects the deadlock itself: the reset is the side PostgreSQL aborts.
        await reader.execute("SET deadlock_timeout = '30s'")
        transaction = reader.transaction()
        await transaction.start()
        await reader.execute(f"SELECT 1 FROM gateway.{last} LIMIT 1")  # holds the last table
        resetting = asyncio.create_task(reset(conn))
        await asyncio.sleep(0.5)  # TRUNCATE now holds the first table and waits for the last
        assert not resetting.done()
        await reader.execute(f"SELECT 1 FROM gateway.{first} LIMIT 1")  # waits: a deadlock
        await transaction.commit()
        generation = await asyncio.wait_for(resetting, 30)
    finally:
        await reader.close()
    assert generation == before + 1  # the aborted attempt's bump was rolled back with it
    assert await replaying(conn)
    await catch_up(projector_settings, conn)
    assert not await replaying(conn)


async def test_a_small_replay_from_nothing_keeps_the_secondary_indexes(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    await reset(conn)
    small = projector_settings.model_copy(update={"projector_bulk_records": 10**9})
    projector = Projector(small, conn)
    await projector.start()
    try:
        assert projector.bulk_targets is None
        assert await indexes.present(conn) == set(indexes.SECONDARY_INDEXES)
        await projector.catch_up(timeout=120)
    finally:
        await projector.stop()


async def test_a_projector_stopped_during_a_bulk_replay_builds_the_indexes_it_dropped(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    await reset(conn)
    bulk = projector_settings.model_copy(update={"projector_bulk_records": 1})
    projector = Projector(bulk, conn)
    await projector.start()
    assert await indexes.present(conn) == set()
    await projector.stop()
    assert await indexes.present(conn) == set(indexes.SECONDARY_INDEXES)
    await catch_up(projector_settings, conn)


async def test_a_stop_that_cannot_build_the_indexes_in_time_leaves_them_to_the_next_start(
    projector_settings: GatewaySettings, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await reset(conn)
    bulk = projector_settings.model_copy(update={"projector_bulk_records": 1})
    projector = Projector(bulk, conn)
    await projector.start()
    monkeypatch.setattr(consumer_module, "STOP_BUILD_SECONDS", 0.0)
    await projector.stop()
    assert await indexes.present(conn) != set(indexes.SECONDARY_INDEXES)
    # Not a bulk replay itself (the session's topics may hold any number of records by now).
    unbulk = projector_settings.model_copy(update={"projector_bulk_records": 10**9})
    restarted = Projector(unbulk, conn)
    await restarted.start()
    try:
        assert await indexes.present(conn) == set(indexes.SECONDARY_INDEXES)
    finally:
        await restarted.stop()
    await catch_up(projector_settings, conn)


async def test_a_projector_starting_after_a_replay_was_killed_builds_the_missing_indexes(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    await catch_up(projector_settings, conn)
    # What a kill -9 during a bulk replay leaves: positions stored, the indexes gone.
    await indexes.drop(conn)
    assert await indexes.present(conn) == set()
    projector = Projector(projector_settings, conn)
    await projector.start()
    try:
        assert await indexes.present(conn) == set(indexes.SECONDARY_INDEXES)
        assert projector.bulk_targets is None
    finally:
        await projector.stop()


async def test_a_chunk_stops_growing_at_its_byte_budget_and_the_rest_follows_in_order(
    projector_settings: GatewaySettings, conn: asyncpg.Connection
) -> None:
    run = RunScenario(loans=120, batch_size=2)  # 60 batches a stage: far more than a fetch step
    await publish_runs(projector_settings, [run])
    await catch_up(projector_settings, conn)  # everything earlier in the module's topics
    await reset(conn)
    tight = projector_settings.model_copy(
        update={"projector_max_records": 500, "projector_chunk_bytes": 1}
    )
    projector = Projector(tight, conn)
    await projector.start()
    try:
        await asyncio.sleep(1)  # let the consumer fetch ahead: far more than a step is there
        first = await projector.poll_once(timeout_ms=5_000)
        assert 0 < first <= consumer_module.FETCH_STEP
        await projector.catch_up(timeout=120)
    finally:
        await projector.stop()
    facts = await conn.fetchval(
        "SELECT count(*) FROM gateway.loan_facts WHERE run_id = $1", run.run_id
    )
    assert facts == 120
