"""Admin diagnostics (mounted under `/api/admin`, admins only): detailed health, redacted config,
system info, consumer groups with lag, and dead letters (list, inspect, replay one)."""

from __future__ import annotations

import asyncio
import os
import platform
import re
import sys
import time
from collections.abc import Mapping
from typing import Annotated, Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, SecretStr

from contracts.codec import loads
from contracts.topics import DEAD_LETTERS
from services.common.dead_letters import decode_payload
from services.common.health import CHECK_TIMEOUT_SECONDS, database_ready, kafka_ready, storage_ready
from services.common.metrics import logical_topic
from services.gateway.deps import SettingsDep
from services.gateway.error_docs import documented
from services.gateway.errors import NotFound
from services.gateway.settings import GatewaySettings

router = APIRouter(tags=["admin"])

REDACTED = "***"
_SECRET_NAME = re.compile(r"password|secret|token|key", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z0-9+.-]+://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)
_STARTED = time.time()
READ_TIMEOUT_MS = 2000


def redact(name: str, value: Any) -> Any:
    """A setting fit to show: secrets and secret-like names as `***`, URL passwords hidden."""
    if isinstance(value, SecretStr):
        return REDACTED if value.get_secret_value() else ""
    if isinstance(value, Mapping):
        return {key: redact(str(key), item) for key, item in value.items()}
    if value is None or isinstance(value, bool | int | float):
        # Numbers and switches (`access_token_seconds`) are limits, not secrets.
        return value
    if _SECRET_NAME.search(name):
        return REDACTED
    text = str(value)
    return _URL_PASSWORD.sub(rf"\g<head>{REDACTED}@", text)


def redacted_config(settings: BaseModel) -> dict[str, Any]:
    """Every field of the settings, redacted."""
    return {name: redact(name, getattr(settings, name)) for name in type(settings).model_fields}


@router.get("/health/detailed", responses=documented(503))
async def detailed_health(request: Request, settings: SettingsDep) -> JSONResponse:
    """Every dependency with its latency; 503 naming what is down."""
    checks = (
        database_ready(request.app.state.engine),
        kafka_ready(settings),
        storage_ready(request.app.state.storage),
    )

    async def timed(check: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check.check(), CHECK_TIMEOUT_SECONDS)
            outcome: dict[str, Any] = {"status": "ok"}
        except Exception as error:  # every failure means "down"; its class says why
            outcome = {"status": "down", "error": type(error).__name__}
        outcome["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return outcome

    results = await asyncio.gather(*(timed(check) for check in checks))
    components = {check.name: result for check, result in zip(checks, results, strict=True)}
    failing = [name for name, result in components.items() if result["status"] != "ok"]
    body = {
        "status": "unavailable" if failing else "ok",
        "failing": failing,
        "components": components,
    }
    return JSONResponse(body, 503 if failing else 200)


@router.get("/config")
async def config(settings: SettingsDep) -> dict[str, Any]:
    """The running configuration, with every secret replaced by `***`."""
    return redacted_config(settings)


@router.get("/system")
async def system_info() -> dict[str, Any]:
    """Python, platform, process id, uptime and memory of this gateway process."""
    process = psutil.Process()
    memory = process.memory_info()
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "pid": os.getpid(),
        "uptime_seconds": round(time.time() - _STARTED, 3),
        "rss_bytes": memory.rss,
        "cpu_count": os.cpu_count(),
        "threads": process.num_threads(),
    }


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer; first let its background task begin, or aiokafka's stop raises the
    CancelledError of a task cancelled before it ever ran (an empty topic read no records)."""
    await asyncio.sleep(0)
    await consumer.stop()


async def _end_offsets(
    settings: GatewaySettings, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=READ_TIMEOUT_MS * 5,
    )
    await consumer.start()
    try:
        return await consumer.end_offsets(partitions)
    finally:
        await _stop(consumer)


@router.get("/consumer-groups")
async def consumer_groups(settings: SettingsDep) -> list[dict[str, Any]]:
    """Consumer groups reading this deployment's topics, with committed offsets and lag."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        groups = sorted(group_id for group_id, *_ in await admin.list_consumer_groups())
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            mine = {
                tp: meta.offset
                for tp, meta in offsets.items()
                if tp.topic.startswith(settings.topic_prefix) and meta.offset >= 0
            }
            if mine:
                committed[group] = mine
    finally:
        await admin.close()
    partitions = sorted({tp for offsets in committed.values() for tp in offsets})
    ends = await _end_offsets(settings, partitions)
    answer = []
    for group, offsets in committed.items():
        rows = [
            {
                "topic": logical_topic(tp.topic, settings.topic_prefix),
                "partition": tp.partition,
                "committed": offset,
                "end": ends.get(tp, offset),
                "lag": max(ends.get(tp, offset) - offset, 0),
            }
            for tp, offset in sorted(offsets.items())
        ]
        answer.append({"group": group, "lag": sum(r["lag"] for r in rows), "partitions": rows})
    return answer


def _letter(record: Any) -> dict[str, Any]:
    letter = loads(record.value)
    return {"partition": record.partition, "offset": record.offset, "dead_letter": letter}


async def _read(
    settings: GatewaySettings, starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]
) -> list[Any]:
    """Records of the dead-letter topic from `starts` up to `ends` (exclusive)."""
    wanted = [tp for tp in starts if starts[tp] < ends[tp]]
    if not wanted:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, starts[tp])
        pending = set(wanted)
        deadline = asyncio.get_running_loop().time() + READ_TIMEOUT_MS / 1000 * 5
        while pending and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=READ_TIMEOUT_MS)
            for tp, batch in batches.items():
                records.extend(r for r in batch if r.offset < ends[tp])
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
    finally:
        await _stop(consumer)
    return records


async def _dead_letter_partitions(settings: GatewaySettings) -> list[TopicPartition]:
    topic = settings.topic(DEAD_LETTERS)
    return [TopicPartition(topic, p) for p in range(DEAD_LETTERS.partitions)]


@router.get("/dead-letters")
async def list_dead_letters(
    settings: SettingsDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """The newest dead letters (at most `limit`), newest first."""
    partitions = await _dead_letter_partitions(settings)
    ends = await _end_offsets(settings, partitions)
    starts = {tp: max(ends[tp] - limit, 0) for tp in partitions}
    records = await _read(settings, starts, ends)
    records.sort(key=lambda r: (r.timestamp, r.partition, r.offset), reverse=True)
    return [_letter(record) for record in records[:limit]]


async def _one(settings: GatewaySettings, partition: int, offset: int) -> Any:
    if not 0 <= partition < DEAD_LETTERS.partitions or offset < 0:
        raise NotFound("Dead letter not found")
    tp = TopicPartition(settings.topic(DEAD_LETTERS), partition)
    ends = await _end_offsets(settings, [tp])
    if offset >= ends[tp]:
        raise NotFound("Dead letter not found")
    found = [r for r in await _read(settings, {tp: offset}, {tp: offset + 1}) if r.offset == offset]
    if not found:
        raise NotFound("Dead letter not found")
    return found[0]


@router.get("/dead-letters/{partition}/{offset}")
async def inspect_dead_letter(partition: int, offset: int, settings: SettingsDep) -> dict[str, Any]:
    """One dead letter by its position on the dead-letter topic."""
    return _letter(await _one(settings, partition, offset))


@router.post("/dead-letters/{partition}/{offset}/replay")
async def replay_dead_letter(partition: int, offset: int, settings: SettingsDep) -> dict[str, Any]:
    """Publish a dead letter's original payload and key back to its original topic."""
    letter = loads((await _one(settings, partition, offset)).value)
    topic = letter["topic"]
    if not topic.startswith(settings.topic_prefix):
        raise NotFound("Dead letter not found")
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        key = letter.get("key")
        metadata = await producer.send_and_wait(
            topic,
            value=decode_payload(letter["payload"]),
            key=decode_payload(key) if key is not None else None,
            headers=[("replayed-from", f"{partition}:{offset}".encode())],
        )
    finally:
        await producer.stop()
    return {
        "replayed": True,
        "topic": logical_topic(topic, settings.topic_prefix),
        "partition": metadata.partition,
        "offset": metadata.offset,
    }
