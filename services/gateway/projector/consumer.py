"""The projector's read loop: every topic, positions kept in PostgreSQL, one transaction a chunk.

No consumer group: the projector assigns itself every partition and seeks to the positions it
committed with its last write, so what it has projected and where it stands never disagree.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry.trace import TracerProvider
from prometheus_client import Histogram

from contracts.topics import ALL_TOPICS, DEAD_LETTERS, LOAN_TAPES, Topic
from services.common.dead_letters import dead_letter_of
from services.common.metrics import (
    REGISTRY,
    record_consumed,
    record_dead_letter,
    record_projection_lag,
)
from services.common.tracing import chunk_span
from services.gateway.projector import indexes
from services.gateway.projector.plan import Plan, Record, plan
from services.gateway.projector.writer import (
    GenerationChanged,
    current_generation,
    mark_replaying,
    read_positions,
    replaying,
    write_chunk,
)
from services.gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)

SERVICE = "projector"
CHUNK_SECONDS = Histogram(
    "loan_engine_projector_chunk_seconds",
    "Time to project one chunk of records (decode and write, one transaction).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
# Topics whose malformed records another service already dead-letters (ingest reads producers'
# tapes), and the dead-letter topic itself, which never gets a letter about a letter.
NOT_DEAD_LETTERED = frozenset({LOAN_TAPES.name, DEAD_LETTERS.name})
TOPIC_WAIT_SECONDS = 60.0
GENERATION_CHECK_SECONDS = 1.0
FETCH_STEP = 20
"""Records taken from the consumer at a time while a chunk fills (so its byte budget holds)."""
STOP_BUILD_SECONDS = 10.0
"""The longest a stop spends building the indexes a bulk replay dropped (the rest: next start)."""

PublishRaw = Callable[[Topic, str | None, bytes, Mapping[str, str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Fetched:
    """Records read in one poll and the position after each partition's last one."""

    records: list[Record]
    positions: dict[tuple[str, int], int]


def consumer_config(settings: GatewaySettings) -> dict[str, Any]:
    """The projector's consumer: no group (it seeks to its stored positions), large fetches, and
    a fetch that waits for `projector_fetch_min_bytes` or `projector_fetch_wait_ms`.

    During a run, a fetch returning the first record that arrives made chunks of one or two
    batches, each its own transaction; measured on 200,000 loans, waiting for 1 MiB or 100 ms cut
    the projector's CPU from 5.3-5.7 to 4.2-4.4 s. Projection is at most that wait later.
    """
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": f"{settings.service_name}-projector",
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_bytes": settings.projector_fetch_max_bytes,
        "max_partition_fetch_bytes": settings.projector_partition_fetch_bytes,
        "fetch_min_bytes": settings.projector_fetch_min_bytes,
        "fetch_max_wait_ms": settings.projector_fetch_wait_ms,
    }


class TopicsMissing(RuntimeError):
    """The broker does not have every registry topic (they are created by the stack, not here)."""


class Projector:
    """Reads every topic from its stored positions and writes the read models."""

    def __init__(
        self,
        settings: GatewaySettings,
        conn: asyncpg.Connection,
        publish_raw: PublishRaw | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        self.conn = conn
        self.publish_raw = publish_raw
        self.tracer_provider = tracer_provider
        self.consumer: AIOKafkaConsumer | None = None
        self.generation = 0
        self._generation_checked = 0.0
        self.by_physical = {settings.topic(topic): topic for topic in ALL_TOPICS}
        self.bulk_targets: dict[tuple[str, int], int] | None = None
        """While a large replay from nothing runs without the secondary indexes: the end of
        every partition it must reach before they are built again."""
        self.replay_targets: dict[tuple[str, int], int] | None = None
        """While the read models are replayed (after a rebuild, or from no positions): the end
        every partition had when the replay began; reaching them ends `replaying`."""
        self._written: dict[tuple[str, int], int] = {}

    async def start(self) -> None:
        """Connect to the broker, assign every partition and seek to the stored positions."""
        self.consumer = AIOKafkaConsumer(**consumer_config(self.settings))
        await self.consumer.start()
        partitions = await self._partitions()
        self.consumer.assign(partitions)
        # A replay cut short (kill -9) left them dropped: build them before projecting anything.
        if built := await indexes.build_missing(self.conn):
            logger.info("secondary indexes built", extra={"indexes": built})
        await self._seek()

    async def stop(self) -> None:
        """Close the broker connection (positions are already safe in PostgreSQL).

        A bulk replay stopped before it caught up builds its indexes now, for at most
        `STOP_BUILD_SECONDS` (a supervisor's stop timeout must still hold on a large log): the
        read models stay queryable at speed whoever stops the projector, and what is not built
        by then the next start builds (`start`).
        """
        if self.bulk_targets is not None:
            try:
                await asyncio.wait_for(self._end_bulk(), STOP_BUILD_SECONDS)
            except (TimeoutError, asyncpg.PostgresError, OSError) as error:
                logger.warning(
                    "secondary indexes not built at stop",
                    extra={"error": str(error) or type(error).__name__},
                )
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None

    async def _partitions(self) -> list[TopicPartition]:
        assert self.consumer is not None
        deadline = time.monotonic() + TOPIC_WAIT_SECONDS
        while True:
            # aiokafka only knows partitions of subscribed topics; a manual assignment asks the
            # cluster metadata directly.
            cluster = await self.consumer._client.fetch_all_metadata()
            found: list[TopicPartition] = []
            missing = []
            for name in self.by_physical:
                ids = cluster.partitions_for_topic(name)
                if not ids:
                    missing.append(name)
                found.extend(TopicPartition(name, pid) for pid in sorted(ids or ()))
            if not missing:
                return found
            if time.monotonic() > deadline:
                raise TopicsMissing(f"topics missing on the broker: {', '.join(missing)}")
            logger.info("waiting for topics", extra={"missing": missing})
            await asyncio.sleep(1.0)

    async def _seek(self) -> None:
        assert self.consumer is not None
        self.generation = await current_generation(self.conn)
        stored = await read_positions(self.conn)
        for tp in self.consumer.assignment():
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
        logger.info(
            "projector positioned", extra={"generation": self.generation, "stored": len(stored)}
        )
        self._written = dict(stored)
        if not stored or await replaying(self.conn):
            await self._begin_replay()
        if not stored:
            await self._begin_bulk()

    async def _begin_replay(self) -> None:
        """The read models are filling from the log: say so until the log's current end."""
        ends = await self.end_offsets()
        targets = {tp: end for tp, end in ends.items() if end > self._written.get(tp, 0)}
        self.replay_targets = targets or None
        await mark_replaying(self.conn, self.generation, bool(targets))
        if targets:
            logger.info("replaying the log", extra={"partitions": len(targets)})

    async def _end_replay_if_caught_up(self) -> None:
        targets = self.replay_targets
        if targets is None or any(self._written.get(tp, 0) < end for tp, end in targets.items()):
            return
        self.replay_targets = None
        await mark_replaying(self.conn, self.generation, False)
        logger.info("replay caught up", extra={"generation": self.generation})

    async def _begin_bulk(self) -> None:
        """From nothing with a large log ahead: drop the secondary indexes until caught up."""
        assert self.consumer is not None
        assignment = list(self.consumer.assignment())
        starts = await self.consumer.beginning_offsets(assignment)
        ends = await self.consumer.end_offsets(assignment)
        backlog = sum(ends[tp] - starts[tp] for tp in assignment)
        if backlog < self.settings.projector_bulk_records:
            return
        self.bulk_targets = {
            (tp.topic, tp.partition): ends[tp] for tp in assignment if ends[tp] > starts[tp]
        }
        await indexes.drop(self.conn)
        logger.info("bulk replay without secondary indexes", extra={"records": backlog})

    async def _end_bulk(self) -> None:
        started = time.perf_counter()
        built = await indexes.build_missing(self.conn)
        self.bulk_targets = None
        logger.info(
            "bulk replay caught up, secondary indexes built",
            extra={"indexes": built, "seconds": round(time.perf_counter() - started, 3)},
        )

    def _bulk_caught_up(self) -> bool:
        targets = self.bulk_targets
        return targets is not None and all(
            self._written.get(tp, 0) >= end for tp, end in targets.items()
        )

    async def _fetch(self, timeout_ms: int | None = None) -> Fetched | None:
        """The next chunk of records and the positions after them (None when none came).

        A chunk holds at most `projector_max_records` records and stops growing once its values
        reach `projector_chunk_bytes`: behind by a backlog of scored batches (each with its
        loans' factors and inputs), 200 records a chunk took the projector past 600 MB.
        """
        assert self.consumer is not None
        records: list[Record] = []
        positions: dict[tuple[str, int], int] = {}
        size = 0
        wait = self.settings.projector_poll_ms if timeout_ms is None else timeout_ms
        while len(records) < self.settings.projector_max_records:
            fetched = await self.consumer.getmany(
                timeout_ms=wait,
                max_records=min(FETCH_STEP, self.settings.projector_max_records - len(records)),
            )
            if not fetched:
                break
            for tp, items in fetched.items():
                topic = self.by_physical[tp.topic]
                for item in items:
                    records.append(
                        Record(
                            topic.name,
                            item.partition,
                            item.offset,
                            item.key,
                            item.value,
                            tuple(item.headers or ()),
                            item.timestamp,
                        )
                    )
                    size += len(item.value or b"")
                if items:
                    positions[(tp.topic, tp.partition)] = items[-1].offset + 1
            if size >= self.settings.projector_chunk_bytes:
                break
            wait = 0  # the rest of the chunk: only what is already fetched
        return Fetched(records, positions) if records else None

    async def _write(self, fetched: Fetched, chunk: Plan) -> bool:
        """Dead-letter what cannot be read, write the chunk; False if a rebuild voided it."""
        started = time.perf_counter()
        await self._dead_letter(chunk)
        try:
            headers = [record.headers for record in fetched.records]
            with chunk_span("projector write", headers, tracer_provider=self.tracer_provider):
                await write_chunk(self.conn, chunk, fetched.positions, self.generation)
        except GenerationChanged:
            return False
        CHUNK_SECONDS.observe(time.perf_counter() - started)
        self._written.update(fetched.positions)
        if self._bulk_caught_up():
            await self._end_bulk()
        await self._end_replay_if_caught_up()
        for topic, event_type, loans in chunk.consumed:
            record_consumed(SERVICE, topic, event_type, loans)
        newest: dict[str, int] = {}
        for record in fetched.records:
            newest[record.topic] = max(newest.get(record.topic, 0), record.timestamp_ms)
        for topic, timestamp_ms in newest.items():
            record_projection_lag(topic, timestamp_ms)
        return True

    async def _project(self, done: Callable[[], Awaitable[bool]]) -> None:
        """Read, plan and write until `done()`, planning the next chunk while one is written.

        Planning (decoding) is Python work and writing mostly PostgreSQL's, so the two overlap on
        two cores. Chunks are still written one at a time and in order, each with its positions.
        """
        writing: asyncio.Task[bool] | None = None
        try:
            while True:
                if await done():
                    if writing is None:
                        return
                    written, writing = await writing, None
                    if written:
                        return
                    await self._replay()
                    continue
                fetched = await self._fetch()
                if fetched is None:
                    if writing is not None:
                        written, writing = await writing, None
                        if not written:
                            await self._replay()
                    else:
                        await self._check_generation()
                    continue
                chunk = await asyncio.to_thread(plan, fetched.records)
                if writing is not None:
                    written, writing = await writing, None
                    if not written:
                        await self._replay()
                        continue
                writing = asyncio.create_task(self._write(fetched, chunk))
        finally:
            if writing is not None and not await writing:
                await self._replay()

    async def _replay(self) -> None:
        logger.info("read models were reset, replaying from the stored positions")
        await self._seek()

    async def poll_once(self, timeout_ms: int | None = None) -> int:
        """Read one chunk and project it; return how many records it held."""
        fetched = await self._fetch(timeout_ms)
        if fetched is None:
            await self._check_generation()
            return 0
        if not await self._write(fetched, plan(fetched.records)):
            await self._replay()
            return 0
        return len(fetched.records)

    async def _check_generation(self) -> None:
        """While idle, notice a rebuild (a busy projector notices it in its next write)."""
        if time.monotonic() - self._generation_checked < GENERATION_CHECK_SECONDS:
            return
        self._generation_checked = time.monotonic()
        if await current_generation(self.conn) != self.generation:
            logger.info("read models were reset, replaying from the start")
            await self._seek()

    async def _dead_letter(self, chunk: Plan) -> None:
        for rejected in chunk.rejected:
            record = rejected.record
            logger.warning(
                "record not projectable",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "reason": rejected.reason[:200],
                },
            )
            if self.publish_raw is None or record.topic in NOT_DEAD_LETTERED:
                continue
            record_dead_letter(SERVICE, record.topic)
            physical = self.settings.topic(_topic(record.topic))
            letter = dead_letter_of(
                record,
                service=SERVICE,
                reason=rejected.reason,
                # The record's own time, not the clock: a replay projects the same letter.
                occurred_at=record.timestamp,
                topic=physical,
            )
            await self.publish_raw(
                DEAD_LETTERS,
                letter.key,
                letter.model_dump_json().encode(),
                {"event-type": letter.event_type},
            )

    async def end_offsets(self) -> dict[tuple[str, int], int]:
        """The broker's current end of every assigned partition."""
        assert self.consumer is not None
        ends = await self.consumer.end_offsets(list(self.consumer.assignment()))
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def catch_up(self, timeout: float = 600.0) -> None:
        """Project until every partition reaches the end it had when this call began."""
        consumer = self.consumer
        assert consumer is not None
        targets = await self.end_offsets()
        deadline = time.monotonic() + timeout

        async def reached() -> bool:
            for tp in consumer.assignment():
                if await consumer.position(tp) < targets[(tp.topic, tp.partition)]:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"projector still behind on {tp.topic}/{tp.partition}")
                    return False
            return True

        await self._project(reached)

    async def run(self, stop: asyncio.Event) -> None:
        """Project until `stop` is set; the chunk being written is finished first."""

        async def stopped() -> bool:
            return stop.is_set()

        await self._project(stopped)


def _topic(name: str) -> Topic:
    return next(topic for topic in ALL_TOPICS if topic.name == name)
