"""Ingest's adapters to Kafka: run requests through FastStream, producer tapes through aiokafka.

Producer tapes use a plain consumer because its offsets are committed by rule, not per message:
only up to a point no spooled tape straddles (services.ingest.spool), so a lost spool is rebuilt
by replaying the topic. After every poll the consumer expires open tapes that waited too long for
their end marker, and commits past them at once: a crashed producer holds no partition back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import ValidationError

from contracts.codec import decode, encode, loads
from contracts.ids import batch_key
from contracts.runs import RunReprocessRequested, RunRequested, RunRetryRequested, RunStarted
from contracts.tapes import TapeEnd, TapeRow, decode_tape_message
from contracts.topics import LOAN_TAPES, LOANS_INGESTED, RUNS
from contracts.wire import IngestedBatch
from services.common.consumer import (
    RetryPolicy,
    UndecodableMessage,
    consumer_options,
    retry_transient,
)
from services.common.dead_letters import PublishDeadLetter, dead_letter_of, reason_of
from services.common.health import NotReady, ReadyCheck
from services.common.kafka import MAX_REQUEST_BYTES, batch_headers
from services.common.metrics import record_consumed, record_tape_expired
from services.common.storage import InvalidPath, safe_name
from services.common.tracing import consumer_span, record_attributes
from services.ingest.batches import BatchTooLarge, SendBatch
from services.ingest.offload import Interrupted
from services.ingest.service import IngestService, TapeRefused
from services.ingest.settings import IngestSettings
from services.ingest.spool import SpooledRow, StartedRuns

logger = logging.getLogger(__name__)

HandledRunEvent = RunRequested | RunReprocessRequested | RunRetryRequested | RunStarted
HANDLED: dict[str, type[HandledRunEvent]] = {
    model.model_fields["event_type"].default: model
    for model in (RunRequested, RunReprocessRequested, RunRetryRequested, RunStarted)
}


async def decode_run_event(message: StreamMessage[Any]) -> HandledRunEvent | None:
    """The run events ingest acts on; any other event on `runs.v1` is None (not ingest's)."""
    try:
        event_type = loads(message.body).get("event_type")
        model = HANDLED.get(event_type)
        return None if model is None else decode(message.body, model)
    except (ValidationError, ValueError, AttributeError) as error:
        raise UndecodableMessage(f"not a valid run event: {error}") from error


def subscribe_runs(
    broker: KafkaBroker, settings: IngestSettings, service: IngestService, started: StartedRuns
) -> None:
    """Consume `runs.v1` (group `ingest`): requests, reprocessing, retries and starts seen."""

    @broker.subscriber(
        settings.topic(RUNS),
        decoder=decode_run_event,
        max_workers=settings.runs_workers,
        **consumer_options(settings.runs_group, max_poll_interval_ms=settings.max_poll_interval_ms),
    )
    async def on_run_event(event: HandledRunEvent | None) -> None:
        """Start a requested run, or remember a start so a retry of ingest can redo it.

        A tape abandoned at shutdown leaves its request uncommitted: it is read again on restart.
        """
        try:
            await handle_run_event(event)
        except Interrupted as error:
            raise NackMessage() from error

    async def handle_run_event(event: HandledRunEvent | None) -> None:
        match event:
            case RunRequested():
                await service.on_run_requested(event)
            case RunReprocessRequested():
                await service.on_reprocess_requested(event)
            case RunRetryRequested():
                await service.on_retry_requested(event, started.get(event.run_id))
            case RunStarted():
                started.record(event)


# A file name holds 255 bytes: `.{tape_id}.csv.partial` leaves room for a tape id of 200.
MAX_TAPE_ID_BYTES = 200


def check_tape_message(record: ConsumerRecord[bytes, bytes], max_rows: int) -> TapeRow | TapeEnd:
    """A producer record as a tape message; UndecodableMessage says what is wrong with it.

    Beyond the schema: the key must be the tape id, the tape id must name a file (`{tape_id}.csv`,
    archived through a temporary `.{tape_id}.csv.partial`, in at most 255 bytes), and row numbers
    and an end marker's count must lie within the `max_rows` a tape may have.
    """
    try:
        message = decode_tape_message(record.value or b"")
    except ValidationError as error:
        raise UndecodableMessage(f"not a valid tape message: {error}") from error
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    if key != message.tape_id:
        raise UndecodableMessage(f"record key {key!r} is not the tape id {message.tape_id!r}")
    try:
        usable = safe_name(f"{message.tape_id}.csv") == f"{message.tape_id}.csv"
    except InvalidPath:
        usable = False
    if not usable:
        raise UndecodableMessage(f"tape id {message.tape_id!r} cannot name a file")
    if len(message.tape_id.encode("utf-8")) > MAX_TAPE_ID_BYTES:
        raise UndecodableMessage(
            f"tape id is longer than {MAX_TAPE_ID_BYTES} bytes, so it cannot name a file"
        )
    number = message.row if isinstance(message, TapeRow) else message.rows
    if number > max_rows:
        what = f"row {number} is" if isinstance(message, TapeRow) else f"end marker counts {number}"
        raise UndecodableMessage(
            f"{what} beyond the {max_rows} rows a tape may have (INGEST_MAX_ROWS)"
        )
    return message


# Room left in a Kafka record for its key, headers and the record batch's own framing.
RECORD_OVERHEAD_BYTES = 64 * 1024


def broker_batch_sender(broker: KafkaBroker, settings: IngestSettings) -> SendBatch:
    """Loan batches through the service's broker without waiting: the future of the ack.

    A batch that encodes beyond what the producer and the topic accept raises BatchTooLarge
    before anything is sent, so the sender can split it.
    """
    topic = settings.topic(LOANS_INGESTED)
    limit = MAX_REQUEST_BYTES - RECORD_OVERHEAD_BYTES

    async def send(batch: IngestedBatch) -> asyncio.Future[Any]:
        value = encode(batch)
        if len(value) > limit:
            raise BatchTooLarge(len(value), limit)
        key = batch_key(batch.run_id, batch.batch_seq).encode()
        headers = batch_headers(batch)
        return await broker.publish(value, topic, key=key, headers=headers, no_confirm=True)

    return send


class TapeConsumer:
    """Spools producer rows, runs a tape at its end marker, and commits only what is safe."""

    def __init__(
        self,
        settings: IngestSettings,
        service: IngestService,
        dead_letter: PublishDeadLetter,
        policy: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.settings = settings
        self.service = service
        self.spool = service.spool
        self.dead_letter = dead_letter
        self.policy = policy
        self.topic = settings.topic(LOAN_TAPES)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The running consumer (created on start: aiokafka needs the running loop)."""
        if self._consumer is None:
            raise RuntimeError("the tape consumer has not started")
        return self._consumer

    async def start(self) -> None:
        """Join the group and start consuming in the background."""
        settings = self.settings
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.tapes_group,
            client_id=f"{settings.service_name}-tapes",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.tapes_poll_records,
            max_poll_interval_ms=settings.max_poll_interval_ms,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="ingest-tapes")

    async def stop(self) -> None:
        """Stop consuming (an end marker being handled is abandoned, and redelivered later)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    def ready_check(self) -> ReadyCheck:
        """Readiness fails, naming the error, if the consumer's task has ended (it never should)."""

        async def check() -> None:
            if self._task is not None and self._task.done() and not self._task.cancelled():
                raise NotReady(f"the producer-tape consumer stopped: {self._task.exception()!r}")

        return ReadyCheck("tapes", check)

    async def _run(self) -> None:
        try:
            while True:
                polled = await self.consumer.getmany(timeout_ms=1000)
                for partition, records in polled.items():
                    await self._handle_or_rewind(partition, records)
                try:
                    await self.expire_open_tapes()
                except KafkaError as error:
                    # A rebalance took a partition mid-way: its next reader replays it, commits.
                    logger.warning(
                        "tape expiry interrupted by a rebalance",
                        extra={"error": type(error).__name__},
                    )
        except Exception:  # cancellation (stop) is not an Exception and ends the task quietly
            logger.critical("the producer-tape consumer stopped", exc_info=True)
            raise

    async def _handle_or_rewind(
        self, partition: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        """Handle a partition's records; on failure read them again later, never stop consuming.

        Spooling and end markers are idempotent, so records handled before the failure are
        handled again harmlessly.
        """
        try:
            await self.handle(partition, records)
        except (IllegalStateError, CommitFailedError) as error:
            # A rebalance took the partition mid-way: its next reader replays it from the commit.
            logger.warning(
                "tape partition lost to a rebalance",
                extra={"partition": partition.partition, "error": type(error).__name__},
            )
        except Exception:
            logger.exception(
                "tape records failed; they will be read again",
                extra={"partition": partition.partition, "offset": records[0].offset},
            )
            with contextlib.suppress(IllegalStateError):
                self.consumer.seek(partition, records[0].offset)
            await asyncio.sleep(self.policy.cap_seconds)

    async def expire_open_tapes(self) -> None:
        """Expire tapes whose end marker is overdue and commit past them.

        Only on partitions read to their end: a backlog (ingest was down or busy) may hold the
        end marker, so ingest's own delays never expire a tape.
        """
        caught_up = {tp.partition: tp for tp in await self._caught_up()}
        now = self.service.clock()
        ttl = self.settings.open_tape_ttl_seconds
        expired = self.spool.expire(now, ttl, caught_up.keys())
        for tape in expired:
            record_tape_expired()
            logger.warning(
                "open tape expired without an end marker; its rows were dropped",
                extra={
                    "tape_id": tape.tape_id,
                    "partition": tape.partition,
                    "rows_dropped": tape.rows,
                    "ttl_seconds": ttl,
                    "last_row_at": tape.arrived_at.isoformat(),
                },
            )
        for number in sorted({tape.partition for tape in expired}):
            partition = caught_up[number]
            await self._commit(partition, await self.consumer.position(partition))

    async def _caught_up(self) -> list[TopicPartition]:
        """This consumer's partitions with nothing left to read (as of the last fetch)."""
        marks = {tp: self.consumer.highwater(tp) for tp in sorted(self.consumer.assignment())}
        found: list[TopicPartition] = []
        for partition, highwater in marks.items():
            if highwater is not None and await self.consumer.position(partition) >= highwater:
                found.append(partition)
        return found

    async def handle(
        self, partition: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        """Spool a partition's records in order, handle end markers, commit the safe offset."""
        rows: list[SpooledRow] = []
        by_offset = {record.offset: record for record in records}
        for record in records:
            try:
                message = check_tape_message(record, self.settings.max_rows)
            except UndecodableMessage as error:
                await self._dead_letter(record, reason_of(error))
                continue
            record_consumed(self.settings.service_name, LOAN_TAPES.name, f"tape.{message.kind}")
            if isinstance(message, TapeRow):
                rows.append(
                    SpooledRow(
                        message.tape_id,
                        message.row,
                        message.fields,
                        record.partition,
                        record.offset,
                    )
                )
                continue
            await self._spool(rows, by_offset)
            rows = []
            if not await self._end(message, record):
                self.consumer.seek(partition, record.offset)
                return
        await self._spool(rows, by_offset)
        await self._commit(partition, records[-1].offset + 1)

    async def _spool(
        self, rows: list[SpooledRow], records: dict[int, ConsumerRecord[bytes, bytes]]
    ) -> None:
        """Spool rows; dead-letter those the spool refuses (rows that would change a tape)."""
        for row, reason in self.spool.add(rows, self.service.clock()):
            await self._dead_letter(records[row.offset], reason)

    async def _end(self, end: TapeEnd, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Handle an end marker, retrying transient faults; False leaves it for redelivery."""
        timestamp = datetime.fromtimestamp(record.timestamp / 1000, UTC)
        attributes = record_attributes(record, LOAN_TAPES.name, 1)
        try:
            with consumer_span(f"{self.topic} process", record.headers, attributes=attributes):
                await retry_transient(
                    lambda: self.service.on_tape_end(
                        end, record.partition, record.offset, timestamp
                    ),
                    self.policy,
                )
        except TapeRefused as refused:
            await self._dead_letter(record, str(refused))
            return True
        except Interrupted:
            return False  # shutting down: the end marker is read again on restart
        except Exception:
            logger.exception(
                "tape end marker failed; it will be redelivered",
                extra={"tape_id": end.tape_id, "offset": record.offset},
            )
            await asyncio.sleep(self.policy.cap_seconds)
            return False
        return True

    async def _commit(self, partition: TopicPartition, next_offset: int) -> None:
        offset = self.spool.committable(partition.partition, next_offset)
        await self.consumer.commit({partition: offset})
        self.spool.committed(partition.partition, offset)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        letter = dead_letter_of(
            record, service=self.settings.service_name, reason=reason, occurred_at=datetime.now(UTC)
        )
        await self.dead_letter(letter)
        logger.warning(
            "tape message dead-lettered",
            extra={"partition": record.partition, "offset": record.offset, "reason": reason[:200]},
        )
