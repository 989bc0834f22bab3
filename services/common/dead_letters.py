"""Dead letters (SPEC §2, §5): a message no handler can process is set aside, never blocking.

One mechanism for every service: `make_broker` installs `DeadLetterMiddleware` innermost on every
subscriber. It retries transient faults with back-off (then lets the record be redelivered), and
turns permanent ones — undecodable or schema-invalid bodies, `PermanentMessageError`, or a handler
that keeps failing — into a `DeadLetter` on `dead-letters.v1`, then acknowledges the original so
the consumer moves on.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from fast_depends.exceptions import ValidationError as InjectionValidationError
from faststream.exceptions import AckMessage, IgnoredException
from faststream.message import StreamMessage
from faststream.middlewares import BaseMiddleware
from pydantic import ValidationError

from contracts.codec import encode
from contracts.dead_letters import DeadLetter
from contracts.ids import NS
from contracts.topics import DEAD_LETTERS
from services.common.consumer import PermanentMessageError, RetryPolicy, is_transient
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


class DeadLetterMiddleware:
    """A FastStream broker middleware factory, installed by `runtime.make_broker`."""

    def __init__(
        self,
        service: str,
        publish: PublishDeadLetter,
        policy: RetryPolicy = RetryPolicy(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.service = service
        self.publish = publish
        self.policy = policy
        self.clock = clock

    def __call__(self, msg: Any, /, *, context: Any) -> _DeadLetterScope:
        return _DeadLetterScope(msg, context=context, factory=self)

    async def send(self, message: StreamMessage[Any], reason: str) -> None:
        """Dead-letter every record behind `message`."""
        for record in records_of(message):
            letter = dead_letter_of(
                record, service=self.service, reason=reason, occurred_at=self.clock()
            )
            # Counted by EventMetricsMiddleware when it sees the publish to dead-letters.v1.
            await self.publish(letter)
            logger.warning(
                "message dead-lettered",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "reason": letter.reason[:200],
                },
            )


class _DeadLetterScope(BaseMiddleware):
    """Per-message scope: retry, or dead-letter and acknowledge."""

    def __init__(self, msg: Any, /, *, context: Any, factory: DeadLetterMiddleware) -> None:
        super().__init__(msg, context=context)
        self.factory = factory

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
