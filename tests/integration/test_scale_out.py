"""Scale-out: a second instance of rules and of pricing joining their consumer groups while a run
is under way shares its batches (a rebalance, maybe a redelivery) and changes no byte of its
reports."""

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from asgi_lifespan import LifespanManager
from test_rules_pricing import GOLDEN, Outputs, golden_batches, run_started, settings_for

from contracts.runs import REPORT_KEYS
from contracts.topics import (
    LOANS_DISPOSITIONED,
    LOANS_EVALUATED,
    LOANS_INGESTED,
    LOANS_PRICED,
    RUNS,
)
from services.common.kafka import KafkaPublisher
from services.pricing.main import build_app as build_pricing
from services.reporting.main import build_app as build_reporting
from services.rules.main import build_app as build_rules

pytestmark = pytest.mark.integration


def lifespan(app: object) -> LifespanManager:
    return LifespanManager(app, startup_timeout=90, shutdown_timeout=90)  # type: ignore[arg-type]


async def members(kafka: str, group: str) -> int:
    """How many consumers the group has now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (described,) = response.to_object()["groups"]
    return len(described["members"])


async def until_members(kafka: str, group: str, count: int, timeout: float = 90) -> None:
    async with asyncio.timeout(timeout):
        while await members(kafka, group) != count:
            await asyncio.sleep(0.5)


async def test_second_rules_and_pricing_instances_joining_mid_run_change_no_report_byte(
    kafka_bootstrap_servers: str, module_topic_prefix: str, database_url: str, storage_root: Path
) -> None:
    rules, pricing, reporting = settings_for(
        kafka_bootstrap_servers, module_topic_prefix, database_url, storage_root
    )
    run_id = uuid4()
    batches, ingested = golden_batches(run_id)
    half = len(batches) // 2
    assert half > 0
    async with AsyncExitStack() as stack:
        for app in (build_rules(rules), build_pricing(pricing), build_reporting(reporting)):
            await stack.enter_async_context(lifespan(app))
        async with KafkaPublisher(reporting) as publisher:
            await publisher.publish(RUNS, str(run_id), run_started(run_id))
            for batch in batches[:half]:
                await publisher.publish_batch(LOANS_INGESTED, batch)
            # The same groups (same settings): the newcomers take partitions over mid-run.
            alone = {
                group: await members(kafka_bootstrap_servers, group)
                for group in (rules.consumer_group, pricing.consumer_group)
            }
            await stack.enter_async_context(lifespan(build_rules(rules)))
            await stack.enter_async_context(lifespan(build_pricing(pricing)))
            for group, count in alone.items():
                assert count > 0
                await until_members(kafka_bootstrap_servers, group, 2 * count)
            for batch in batches[half:]:
                await publisher.publish_batch(LOANS_INGESTED, batch)
            await publisher.publish(RUNS, str(run_id), ingested)
        outputs = Outputs(reporting, run_id)
        completed = await outputs.until_completed(timeout=180)

    sequence = list(range(len(batches)))
    for topic in (LOANS_EVALUATED, LOANS_PRICED, LOANS_DISPOSITIONED):
        # A batch redelivered by the rebalance may appear twice; none is missing.
        assert sorted({batch.batch_seq for batch in outputs.batches(topic)}) == sequence
    assert len(outputs.completed()) == 1
    for key in REPORT_KEYS:
        stored = (storage_root / f"outputs/{run_id}/{key}.csv").read_bytes()
        assert stored == (GOLDEN / "expected" / f"{key}.csv").read_bytes()
    assert completed.total_loans == sum(len(batch.events) for batch in batches)
