"""Dead letters (SPEC §2, §5): a message no handler can process is set aside, never blocking.

One mechanism for every service: `make_broker` installs `DeadLetterMiddleware` innermost on every
subscriber. It retries transient faults with back-off (then lets the record be redelivered), and
turns permanent ones — undecodable or schema-invalid bodies, `PermanentMessageError`, or a handler
that keeps failing — into a `DeadLetter` on `dead-letters.v1`, then acknowledges the original so
the consumer moves on. A record of a run (keyed by its run id) that is dead-lettered also fails
its run with a `RunFailed` naming the reason, so the run ends instead of waiting for loans; not
so a record of people's work on a run's loans (reviews, triage, corrections: `fails_its_run`).

It also guards what the worker publishes (`publish_scope`): a send that fails replaces the
idempotent producer (`services.common.kafka.ProducerRenewal`) and is sent again with back-off.
A record whose delivery keeps failing the same permanent way after its handler returned (its
output cannot be published) is dead-lettered after `max_failed_deliveries` deliveries instead of
being redelivered for ever.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID, uuid5

from fast_depends.exceptions import ValidationError as InjectionValidationError
from faststream.exceptions import AckMessage, HandlerException, IgnoredException
from faststream.message import StreamMessage
from faststream.middlewares import BaseMiddleware
from pydantic import ValidationError

from contracts.codec import encode
from contracts.dead_letters import DeadLetter
from contracts.ids import NS, event_id
from contracts.runs import Phase, RunFailed
from contracts.topics import (
    AUDIT,
    CORRECTIONS,
    DEAD_LETTERS,
    MODELS,
    NOTIFICATIONS,
    REVIEWS,
    RUNS,
    TRIAGE,
    Topic,
)
from services.common.consumer import PermanentMessageError, RetryPolicy, is_transient
from services.common.kafka import ProducerRenewal, spoils_producer
from services.common.settings import ServiceSettings

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    PermanentMessageError,
    ValidationError,
    InjectionValidationError,
    UnicodeDecodeError,
)

PublishDeadLetter = Callable[[DeadLetter], Awaitable[None]]
PublishRunFailed = Callable[[RunFailed], Awaitable[None]]
# The phase a service's dead letter stops a run in.
SERVICE_PHASES: dict[str, Phase] = {
    "ingest": "ingest",
    "rules": "eligibility",
    "pricing": "pricing",
    "reporting": "disposition",
}
# Failed deliveries remembered per worker (records whose failures are being counted).
MAX_TRACKED_RECORDS = 10_000


def encode_payload(value: bytes | None) -> str:
    """The original bytes as UTF-8 text, or `b64:` + base64 when they are not UTF-8."""
    if value is None:
        return ""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return "b64:" + base64.b64encode(value).decode("ascii")


def decode_payload(payload: str) -> bytes:
    """The original bytes of a dead letter's payload (inverse of `encode_payload`)."""
    if payload.startswith("b64:"):
        return base64.b64decode(payload[4:])
    return payload.encode("utf-8")


def dead_letter_id(topic: str, partition: int, offset: int) -> UUID:
    """One id per original record, so re-dead-lettering a redelivery is recognisably the same."""
    return uuid5(NS, f"dead-letter/{topic}/{partition}/{offset}")


def build_dead_letter(
    *,
    service: str,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    occurred_at: datetime,
) -> DeadLetter:
    """The dead letter for one original record."""
    return DeadLetter(
        event_id=dead_letter_id(topic, partition, offset),
        service=service,
        reason=reason[:MAX_REASON_CHARS],
        topic=topic,
        partition=partition,
        offset=offset,
        key=encode_payload(key) if key is not None else None,
        payload=encode_payload(value),
        occurred_at=occurred_at,
    )


def dead_letter_of(
    record: Any, *, service: str, reason: str, occurred_at: datetime, topic: str | None = None
) -> DeadLetter:
    """The dead letter of one consumed Kafka record (`topic` overrides the record's own)."""
    return build_dead_letter(
        service=service,
        reason=reason,
        topic=record.topic if topic is None else topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        occurred_at=occurred_at,
    )


def records_of(message: StreamMessage[Any]) -> tuple[Any, ...]:
    """The Kafka records behind a FastStream message (one, or several for batch subscribers)."""
    raw = message.raw_message
    return tuple(raw) if isinstance(raw, tuple | list) else (raw,)


def reason_of(exc: BaseException) -> str:
    """A one-paragraph reason naming the error type."""
    return f"{type(exc).__name__}: {exc}"


# Topics whose records are about a run's loans after the fact (people's work, model cards,
# audit): one of them set aside must not fail a run, even when its key starts with a run id.
NOT_A_RUNS_PROCESSING: tuple[Topic, ...] = (
    REVIEWS,
    TRIAGE,
    CORRECTIONS,
    AUDIT,
    NOTIFICATIONS,
    MODELS,
    DEAD_LETTERS,
)


def fails_its_run(physical_topic: str) -> bool:
    """Whether a record of this (prefixed) topic that is dead-lettered fails the run it names."""
    return not any(physical_topic.endswith(topic.name) for topic in NOT_A_RUNS_PROCESSING)


def run_id_of(key: bytes | None) -> UUID | None:
    """The run a record belongs to, from its key (`{run_id}` or `{run_id}:{batch_seq}`)."""
    if key is None:
        return None
    try:
        return UUID(key.decode("utf-8").split(":", 1)[0])
    except (UnicodeDecodeError, ValueError):
        return None


def run_failed_of(letter: DeadLetter, run_id: UUID, phase: Phase) -> RunFailed:
    """The failure of the run whose record was dead-lettered (one id per original record)."""
    return RunFailed(
        event_id=event_id("run.failed", run_id, phase, "dead-letter", letter.event_id),
        run_id=run_id,
        occurred_at=letter.occurred_at,
        producer=letter.service,
        phase=phase,
        error=(
            f"a record of this run could not be processed and was dead-lettered "
            f"({letter.topic}/{letter.partition}/{letter.offset}): {letter.reason}"
        )[:MAX_REASON_CHARS],
    )


def broker_publisher(broker: Any, settings: ServiceSettings) -> PublishDeadLetter:
    """Publish dead letters through a FastStream broker, keyed by the original key."""

    async def publish(letter: DeadLetter) -> None:
        await broker.publish(
            encode(letter),
            topic=settings.topic(DEAD_LETTERS),
            key=letter.key.encode() if letter.key is not None else None,
            headers={"event-type": letter.event_type},
        )

    return publish


def broker_run_failer(broker: Any, settings: ServiceSettings) -> PublishRunFailed:
    """Publish a run's failure through a FastStream broker, keyed by its run id."""

    async def publish(event: RunFailed) -> None:
        await broker.publish(
            encode(event),
            topic=settings.topic(RUNS),
            key=str(event.run_id).encode(),
            headers={"event-type": event.event_type},
        )

    return publish


class DeadLetterMiddleware:
    """A FastStream broker middleware factory, installed by `runtime.make_broker`."""

    def __init__(
        self,
        service: str,
        publish: PublishDeadLetter,
        policy: RetryPolicy = RetryPolicy(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        fail_run: PublishRunFailed | None = None,
        renewal: ProducerRenewal | None = None,
        max_failed_deliveries: int = 5,
    ) -> None:
        self.service = service
        self.publish = publish
        self.policy = policy
        self.clock = clock
        self.fail_run = fail_run
        self.renewal = renewal
        self.max_failed_deliveries = max_failed_deliveries
        self.phase = SERVICE_PHASES.get(service, "ingest")
        # (topic, partition, offset) -> (reason, failed deliveries so far)
        self.failures: dict[tuple[str, int, int], tuple[str, int]] = {}
        self._replacing: set[asyncio.Task[None]] = set()

    def settled(self, generation: int, future: asyncio.Future[Any]) -> None:
        """The outcome of a send nobody waited for: a failure that spoils the producer
        replaces it (as an awaited send's would); the sender still sees the failure."""
        renewal = self.renewal
        if renewal is None or future.cancelled():
            return
        error = future.exception()
        if error is None:
            renewal.succeeded()
        elif spoils_producer(error):
            renewal.failed(error)
            task = asyncio.get_running_loop().create_task(self._replace(renewal, generation))
            self._replacing.add(task)
            task.add_done_callback(self._replacing.discard)

    async def _replace(self, renewal: ProducerRenewal, generation: int) -> None:
        try:
            await renewal.replace(generation)
        except Exception as error:
            # The next send's `ensure()` tries again; this one only logs why it could not.
            logger.warning("replacing the producer failed", extra={"error": reason_of(error)})

    def __call__(self, msg: Any, /, *, context: Any) -> _DeadLetterScope:
        return _DeadLetterScope(msg, context=context, factory=self)

    def count_failure(self, records: tuple[Any, ...], reason: str) -> int:
        """Count one more failed delivery of `records` for `reason`; return how many in a row."""
        key = _coordinates(records[0])
        previous_reason, count = self.failures.pop(key, (reason, 0))
        count = count + 1 if previous_reason == reason else 1
        if len(self.failures) >= MAX_TRACKED_RECORDS:
            self.failures.pop(next(iter(self.failures)))
        self.failures[key] = (reason, count)
        return count

    def forget(self, records: tuple[Any, ...]) -> None:
        """The records went through (or were set aside): stop counting their failures."""
        if self.failures:
            self.failures.pop(_coordinates(records[0]), None)

    async def send(self, message: StreamMessage[Any], reason: str) -> None:
        """Dead-letter every record behind `message`."""
        await self.send_records(records_of(message), reason)

    async def send_records(self, records: tuple[Any, ...], reason: str) -> None:
        """Dead-letter `records`, and fail each run they belong to."""
        for record in records:
            letter = dead_letter_of(
                record, service=self.service, reason=reason, occurred_at=self.clock()
            )
            # Counted by EventMetricsMiddleware when it sees the publish to dead-letters.v1.
            await self.publish(letter)
            run_id = run_id_of(record.key)
            if self.fail_run is not None and run_id is not None and fails_its_run(record.topic):
                await self.fail_run(run_failed_of(letter, run_id, self.phase))
            logger.warning(
                "message dead-lettered",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "reason": letter.reason[:200],
                },
            )


def _coordinates(record: Any) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def _raw_records(msg: Any) -> tuple[Any, ...]:
    records = tuple(msg) if isinstance(msg, tuple | list) else (msg,)
    return tuple(record for record in records if hasattr(record, "offset"))


class _DeadLetterScope(BaseMiddleware):
    """Per-message scope: retry, or dead-letter and acknowledge; publishes that survive a
    broken producer; no endless redelivery of a record that fails the same way."""

    def __init__(self, msg: Any, /, *, context: Any, factory: DeadLetterMiddleware) -> None:
        super().__init__(msg, context=context)
        self.factory = factory

    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        """Send; a failed send replaces the producer and is sent again, with back-off."""
        renewal, policy = self.factory.renewal, self.factory.policy
        if renewal is None:
            return await call_next(cmd)
        attempt = 0
        while True:
            attempt += 1
            generation = renewal.generation
            try:
                await renewal.ensure()
                generation = renewal.generation
                result = await call_next(cmd)
            except Exception as exc:
                if not spoils_producer(exc) or attempt >= policy.transient_attempts:
                    raise
                renewal.failed(exc)
                logger.warning(
                    "publish failed, replacing the producer and sending again",
                    extra={"attempt": attempt, "error": reason_of(exc)},
                )
                await asyncio.sleep(policy.delay(attempt))
                try:
                    await renewal.replace(generation)
                except Exception as renew_error:
                    if not is_transient(renew_error):
                        raise
                continue
            if isinstance(result, asyncio.Future):
                # A send nobody waits for here (`no_confirm`): its outcome decides later, and a
                # failure must still retire the producer, or every later send to its partition
                # is refused for ever.
                result.add_done_callback(partial(self.factory.settled, generation))
                return result
            renewal.succeeded()
            return result

    async def after_processed(
        self,
        _exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        _exc_tb: Any = None,
    ) -> bool | None:
        """Count a delivery that failed after the handler (its output could not be published);
        after `max_failed_deliveries` of the same permanent failure, set the record aside."""
        records = _raw_records(self.msg)
        if not records:
            return False
        if exc_val is None or isinstance(exc_val, HandlerException | asyncio.CancelledError):
            self.factory.forget(records)
            return False
        if not isinstance(exc_val, Exception) or is_transient(exc_val):
            # A dependency is down: the record is redelivered and retried with back-off.
            return False
        reason = reason_of(exc_val)
        count = self.factory.count_failure(records, reason)
        if count < self.factory.max_failed_deliveries:
            logger.warning(
                "delivery failed, the record will be redelivered",
                extra={"deliveries": count, "error": reason[:200]},
            )
            return False
        await self.factory.send_records(records, f"delivered {count} times, failed: {reason}")
        self.factory.forget(records)
        # The failure is handled: the acknowledgement middleware commits past the record.
        return True

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        policy = self.factory.policy
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call_next(msg)
            except (IgnoredException, asyncio.CancelledError):
                raise
            except PERMANENT_ERRORS as exc:
                await self.factory.send(msg, reason_of(exc))
                raise AckMessage() from exc
            except Exception as exc:
                transient = is_transient(exc)
                if transient and attempt >= policy.transient_attempts:
                    # Leave it to the broker: the record is redelivered, nothing is lost.
                    raise
                if not transient and attempt >= policy.attempts:
                    await self.factory.send(msg, f"failed {attempt} times: {reason_of(exc)}")
                    raise AckMessage() from exc
                logger.warning(
                    "message processing failed, retrying",
                    extra={"attempt": attempt, "transient": transient, "error": reason_of(exc)},
                )
                await asyncio.sleep(policy.delay(attempt))
