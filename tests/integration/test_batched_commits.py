"""Loan-batch workers commit the offsets of the records they finished together, once per
KAFKA_COMMIT_INTERVAL_MS, and still at least once: through the real broker, a graceful stop and
a rebalance commit what was finished, a killed worker's uncommitted records are delivered again."""

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from asgi_lifespan import LifespanManager

from contracts.codec import decode, encode
from contracts.ids import batch_key
from contracts.loans import EvaluatedBatch, IngestedBatch
from contracts.topics import DEAD_LETTERS, LOANS_EVALUATED, LOANS_INGESTED, RUNS
from services.cli.stack import ports, supervisor, topics
from services.cli.stack.services import answers
from services.rules.main import build_app
from services.rules.settings import RulesSettings
from tests.conftest import run_async
from tests.factories import loan_ingested, loan_record, run_params

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]
TOPICS = (LOANS_INGESTED, LOANS_EVALUATED, DEAD_LETTERS, RUNS)
NEVER_MS = 600_000  # an interval no test waits for


@pytest.fixture
def prefix(kafka_bootstrap_servers: str, topic_prefix: str) -> Iterator[str]:
    """Topics of this test's own: a new consumer group reads exactly what the test sent."""
    name = f"{topic_prefix}{uuid4().hex[:8]}."
    names = run_async(lambda: topics.ensure_topics(kafka_bootstrap_servers, name, TOPICS))
    try:
        yield name
    finally:
        run_async(lambda: topics.delete_topics(kafka_bootstrap_servers, names))


def rules_settings(kafka: str, prefix: str, interval_ms: int) -> RulesSettings:
    return RulesSettings(
        kafka_bootstrap_servers=kafka,
        topic_prefix=prefix,
        consumer_group=f"{prefix}rules",
        kafka_commit_interval_ms=interval_ms,
    )


async def send_batches(settings: RulesSettings, run_id: UUID, count: int) -> None:
    """`count` one-loan ingested batches of a run, spread over the partitions by their keys."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for seq in range(count):
            batch = IngestedBatch(
                run_id=run_id,
                batch_seq=seq,
                params=run_params(),
                events=(loan_ingested(loan_record(run_id=run_id, seq=seq + 1), run_id=run_id),),
            )
            key = batch_key(run_id, seq).encode()
            await producer.send_and_wait(settings.topic(LOANS_INGESTED), encode(batch), key=key)
    finally:
        await producer.stop()


async def evaluated_seqs(settings: RulesSettings, count: int) -> list[int]:
    """The batch numbers on the evaluated topic from its beginning, once there are `count`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    seqs: list[int] = []
    try:
        assigned = [
            TopicPartition(settings.topic(LOANS_EVALUATED), number)
            for number in range(LOANS_EVALUATED.partitions)
        ]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        async with asyncio.timeout(90):
            while len(seqs) < count:
                polled = await consumer.getmany(timeout_ms=500)
                for record in (item for batch in polled.values() for item in batch):
                    seqs.append(decode(record.value, EvaluatedBatch).batch_seq)
    finally:
        await consumer.stop()
    return sorted(seqs)


async def committed(settings: RulesSettings) -> int:
    """Records of the ingested topic the rules group has committed past, in all."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.consumer_group)
    finally:
        await admin.close()
    topic = settings.topic(LOANS_INGESTED)
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def until_committed(settings: RulesSettings, count: int, timeout: float = 60) -> int:
    async with asyncio.timeout(timeout):
        while (done := await committed(settings)) < count:
            await asyncio.sleep(0.2)
    return done


@pytest.fixture
def commit_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every OffsetCommit a consumer of this process sends (their offsets)."""
    calls: list[Any] = []
    original = AIOKafkaConsumer.commit

    async def counted(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        calls.append(offsets)
        await original(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", counted)
    return calls


async def test_a_rules_worker_commits_the_batches_it_finished_together_not_once_per_record(
    kafka_bootstrap_servers: str, prefix: str, commit_calls: list[Any]
) -> None:
    settings = rules_settings(kafka_bootstrap_servers, prefix, 1_000)
    async with LifespanManager(build_app(settings), startup_timeout=90, shutdown_timeout=30):
        await send_batches(settings, uuid4(), 12)
        assert await evaluated_seqs(settings, 12) == list(range(12))
        assert await until_committed(settings, 12) == 12
        # Twelve records, one commit per consumer per second that finished some.
        assert 1 <= len(commit_calls) < 12


async def test_a_worker_stopped_gracefully_commits_what_it_finished_before_its_interval_ran_out(
    kafka_bootstrap_servers: str, prefix: str
) -> None:
    settings = rules_settings(kafka_bootstrap_servers, prefix, NEVER_MS)
    async with LifespanManager(build_app(settings), startup_timeout=90, shutdown_timeout=30):
        await send_batches(settings, uuid4(), 5)
        assert await evaluated_seqs(settings, 5) == list(range(5))
        assert await committed(settings) == 0

    assert await committed(settings) == 5


async def test_partitions_a_rebalance_revokes_commit_what_was_finished_on_them_first(
    kafka_bootstrap_servers: str, prefix: str
) -> None:
    settings = rules_settings(kafka_bootstrap_servers, prefix, NEVER_MS)
    async with LifespanManager(build_app(settings), startup_timeout=90, shutdown_timeout=30):
        await send_batches(settings, uuid4(), 6)
        assert await evaluated_seqs(settings, 6) == list(range(6))
        assert await committed(settings) == 0
        # Another member joins the group: the worker's partitions are revoked and reassigned.
        joiner = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.consumer_group,
            enable_auto_commit=False,
        )
        joiner.subscribe([settings.topic(LOANS_INGESTED)])
        await joiner.start()
        try:
            assert await until_committed(settings, 6) == 6
        finally:
            await joiner.stop()


async def test_a_worker_logs_each_record_it_handles_at_debug_not_info(
    kafka_bootstrap_servers: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = rules_settings(kafka_bootstrap_servers, prefix, 100)
    logger = f"loan_engine.{settings.service_name}.broker"
    caplog.set_level(logging.DEBUG, logger=logger)
    async with LifespanManager(build_app(settings), startup_timeout=90, shutdown_timeout=30):
        await send_batches(settings, uuid4(), 2)
        assert await evaluated_seqs(settings, 2) == [0, 1]

    per_record = [r for r in caplog.records if r.name == logger and "Received" in r.getMessage()]
    assert len(per_record) == 2
    assert {r.levelno for r in per_record} == {logging.DEBUG}


def spawn_rules(settings: RulesSettings, logs: Path, interval_ms: int) -> tuple[Any, str]:
    """The rules worker as a process of its own; its readiness URL."""
    port = ports.free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "TOPIC_PREFIX": settings.topic_prefix,
        "RULES_CONSUMER_GROUP": settings.consumer_group,
        "RULES_HTTP_PORT": str(port),
        "KAFKA_COMMIT_INTERVAL_MS": str(interval_ms),
        "LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "services.rules.main"]
    spawned = supervisor.spawn(argv, logs / f"rules-{port}.log", env=env, cwd=PROJECT)
    return spawned, f"http://127.0.0.1:{port}/health/ready"


async def test_records_a_killed_worker_finished_but_had_not_committed_are_delivered_again(
    kafka_bootstrap_servers: str, prefix: str, tmp_path: Path
) -> None:
    settings = rules_settings(kafka_bootstrap_servers, prefix, NEVER_MS)
    spawned, ready = spawn_rules(settings, tmp_path, NEVER_MS)
    try:
        assert supervisor.wait_until(lambda: answers(ready, timeout=2.0), timeout=120)
        await send_batches(settings, uuid4(), 4)
        assert await evaluated_seqs(settings, 4) == list(range(4))
        os.kill(spawned.pid, signal.SIGKILL)
    finally:
        supervisor.stop(spawned)
    assert await committed(settings) == 0

    restarted, ready = spawn_rules(settings, tmp_path, 100)
    try:
        assert supervisor.wait_until(lambda: answers(ready, timeout=2.0), timeout=120)
        # Each batch evaluated again (same event ids), none skipped; then committed.
        assert await evaluated_seqs(settings, 8) == sorted([*range(4), *range(4)])
        assert await until_committed(settings, 4) == 4
    finally:
        supervisor.stop(restarted)
