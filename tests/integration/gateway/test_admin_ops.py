"""Admin diagnostics against the real broker and database: health, config, system, lag, dead
letters (list, inspect, replay)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from conftest import PASSWORD, World

from contracts.codec import encode
from contracts.topics import DEAD_LETTERS
from services.common.dead_letters import build_dead_letter
from services.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

DIAGNOSTICS = (
    "/api/admin/health/detailed",
    "/api/admin/config",
    "/api/admin/system",
    "/api/admin/consumer-groups",
    "/api/admin/dead-letters",
    "/api/admin/dead-letters/0/0",
)


@pytest.fixture(scope="module")
async def scratch_topic(settings: GatewaySettings) -> AsyncIterator[str]:
    """A topic of this session's deployment that no service consumes."""
    name = f"{settings.topic_prefix}admin-ops-{uuid.uuid4().hex[:8]}.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


async def produce(settings: GatewaySettings, topic: str, values: list[bytes], key: bytes) -> list:
    """Produce values one by one; their record metadata."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        return [await producer.send_and_wait(topic, value=v, key=key) for v in values]
    finally:
        await producer.stop()


@pytest.mark.parametrize("path", DIAGNOSTICS)
async def test_diagnostics_are_forbidden_to_analysts_and_sales_teams(
    client: httpx.AsyncClient, world: World, path: str
) -> None:
    for headers in (world.analyst, world.sales_a):
        assert (await client.get(path, headers=headers)).status_code == 403
    assert (await client.get(path)).status_code == 401


async def test_replay_is_forbidden_to_analysts(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post("/api/admin/dead-letters/0/0/replay", headers=world.analyst)
    assert response.status_code == 403


async def test_detailed_health_times_every_dependency(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/api/admin/health/detailed", headers=world.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["components"]) == {"database", "kafka", "storage"}
    for component in body["components"].values():
        assert component["status"] == "ok"
        assert 0 <= component["latency_ms"] < 3000


async def test_config_shows_settings_but_no_secret(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    response = await client.get("/api/admin/config", headers=world.admin)
    assert response.status_code == 200
    config = response.json()
    assert config["topic_prefix"] == settings.topic_prefix
    assert config["jwt_secret"] == "***"
    assert config["admin_password"] == "***"
    assert config["rate_limit_login"] == "10/minute"
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() not in response.text
    assert PASSWORD not in response.text


async def test_system_info_describes_this_process(client: httpx.AsyncClient, world: World) -> None:
    info = (await client.get("/api/admin/system", headers=world.admin)).json()
    assert info["pid"] == os.getpid()
    assert info["rss_bytes"] > 10 * 1024 * 1024
    assert info["uptime_seconds"] >= 0
    assert info["python"].startswith("3.")


async def test_consumer_groups_report_lag_against_the_end_offsets(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings, scratch_topic: str
) -> None:
    await produce(settings, scratch_topic, [b"a", b"b", b"c", b"d"], key=b"same-partition")
    group = f"admin-ops-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        scratch_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
        while not batches:
            batches = await consumer.getmany(timeout_ms=5000)
        tp, records = next(iter(batches.items()))
        # Commit after the first record only: three remain.
        await consumer.commit({tp: records[0].offset + 1})
        response = await client.get("/api/admin/consumer-groups", headers=world.admin)
    finally:
        await consumer.stop()
    assert response.status_code == 200, response.text
    mine = [g for g in response.json() if g["group"] == group]
    assert len(mine) == 1
    logical = scratch_topic.removeprefix(settings.topic_prefix)
    assert mine[0]["partitions"] == [
        {"topic": logical, "partition": tp.partition, "committed": 1, "end": 4, "lag": 3}
    ]
    assert mine[0]["lag"] == 3


async def test_a_dead_letter_is_listed_inspected_and_replayed_to_its_original_topic(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings, scratch_topic: str
) -> None:
    original = b'{"not": "a contract", "marker": "' + uuid.uuid4().hex.encode() + b'"}'
    letter = build_dead_letter(
        service="rules",
        reason="ValidationError: not a batch",
        topic=scratch_topic,
        partition=1,
        offset=7,
        key=b"run-1:0",
        value=original,
        occurred_at=datetime.now(UTC),
    )
    [written] = await produce(settings, settings.topic(DEAD_LETTERS), [encode(letter)], b"run-1:0")

    listed = await client.get("/api/admin/dead-letters?limit=20", headers=world.admin)
    assert listed.status_code == 200, listed.text
    found = [e for e in listed.json() if e["dead_letter"]["event_id"] == str(letter.event_id)]
    assert found == [
        {
            "partition": written.partition,
            "offset": written.offset,
            "dead_letter": letter.model_dump(mode="json"),
        }
    ]

    one = await client.get(
        f"/api/admin/dead-letters/{written.partition}/{written.offset}", headers=world.admin
    )
    assert one.json()["dead_letter"]["reason"] == "ValidationError: not a batch"
    missing = await client.get(
        f"/api/admin/dead-letters/{written.partition}/{written.offset + 1000}",
        headers=world.admin,
    )
    assert missing.status_code == 404

    replay = await client.post(
        f"/api/admin/dead-letters/{written.partition}/{written.offset}/replay",
        headers=world.admin,
    )
    assert replay.status_code == 200, replay.text
    replayed = replay.json()
    assert replayed["topic"] == scratch_topic.removeprefix(settings.topic_prefix)
    record = await read_one(
        settings, TopicPartition(scratch_topic, replayed["partition"]), replayed["offset"]
    )
    assert record.value == original
    assert record.key == b"run-1:0"


async def read_one(settings: GatewaySettings, tp: TopicPartition, offset: int) -> object:
    """The record at one offset of a partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        async with asyncio.timeout(15):
            while True:
                for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    if record.offset == offset:
                        return record
    finally:
        await consumer.stop()
