import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError, OutOfOrderSequenceNumber
from faststream.kafka import KafkaBroker, TestKafkaBroker
from pydantic import BaseModel

from contracts.codec import decode
from contracts.dead_letters import DeadLetter
from contracts.runs import RunFailed
from services.common.consumer import (
    RetryPolicy,
    TransientError,
    consumer_options,
    contract_decoder,
)
from services.common.dead_letters import (
    DeadLetterMiddleware,
    build_dead_letter,
    dead_letter_id,
    decode_payload,
    encode_payload,
)
from services.common.kafka import ProducerRenewal

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
FAST = RetryPolicy(attempts=3, transient_attempts=4, base_seconds=0, cap_seconds=0)


class Amount(BaseModel):
    amount: Decimal


def test_utf8_payload_is_kept_as_text() -> None:
    assert encode_payload('{"loan": "é"}'.encode()) == '{"loan": "é"}'


def test_binary_payload_is_base64_with_a_prefix() -> None:
    raw = b"\xff\xfe\x00binary"

    payload = encode_payload(raw)

    assert payload == "b64://4AYmluYXJ5"
    assert decode_payload(payload) == raw


def test_dead_letter_names_the_original_coordinates_and_reason() -> None:
    letter = build_dead_letter(
        service="rules",
        reason="not valid JSON",
        topic="loan-engine.loans.ingested.v1",
        partition=3,
        offset=42,
        key=b"run:7",
        value=b"{oops",
        occurred_at=NOW,
    )

    assert (letter.topic, letter.partition, letter.offset) == (
        "loan-engine.loans.ingested.v1",
        3,
        42,
    )
    assert letter.key == "run:7"
    assert letter.payload == "{oops"
    assert letter.reason == "not valid JSON"
    assert letter.event_id == dead_letter_id("loan-engine.loans.ingested.v1", 3, 42)


def test_a_very_long_reason_is_truncated() -> None:
    letter = build_dead_letter(
        service="rules",
        reason="x" * 10_000,
        topic="t",
        partition=0,
        offset=0,
        key=None,
        value=None,
        occurred_at=NOW,
    )

    assert len(letter.reason) == 2000
    assert letter.payload == ""


class Harness:
    """A broker with the dead-letter middleware and a handler whose behaviour a test chooses."""

    def __init__(self, behaviour: list[BaseException | None]) -> None:
        self.letters: list[DeadLetter] = []
        self.calls = 0
        self.handled: list[Amount] = []
        self.broker = KafkaBroker()
        self.broker.add_middleware(DeadLetterMiddleware("rules", self.collect, policy=FAST))
        behaviours = iter(behaviour)

        @self.broker.subscriber("in", decoder=contract_decoder(Amount), **consumer_options("g"))
        async def handle(message: Amount) -> None:
            self.calls += 1
            failure = next(behaviours, None)
            if failure is not None:
                raise failure
            self.handled.append(message)

    async def collect(self, letter: DeadLetter) -> None:
        self.letters.append(letter)


async def test_undecodable_message_is_dead_lettered_and_acknowledged() -> None:
    harness = Harness([])
    async with TestKafkaBroker(harness.broker) as broker:
        await broker.publish(b"{not json", "in", key=b"k1")
        await broker.publish(b'{"amount": "1.10"}', "in")

    assert harness.handled == [Amount(amount=Decimal("1.10"))]
    [letter] = harness.letters
    assert letter.service == "rules"
    assert letter.topic == "in"
    assert letter.key == "k1"
    assert letter.payload == "{not json"
    assert letter.reason.startswith("UndecodableMessage: not a valid Amount")


async def test_schema_invalid_message_is_dead_lettered_without_calling_the_handler() -> None:
    harness = Harness([])
    async with TestKafkaBroker(harness.broker) as broker:
        await broker.publish(b'{"amount": "lots"}', "in")

    assert harness.calls == 0
    assert len(harness.letters) == 1
    assert "amount" in harness.letters[0].reason


async def test_transient_failure_is_retried_until_it_succeeds() -> None:
    harness = Harness([TransientError("database down"), ConnectionResetError("reset")])
    async with TestKafkaBroker(harness.broker) as broker:
        await broker.publish(b'{"amount": "2"}', "in")

    assert harness.calls == 3
    assert harness.handled == [Amount(amount=Decimal("2"))]
    assert harness.letters == []


async def test_a_handler_that_keeps_failing_is_dead_lettered_after_its_attempts() -> None:
    harness = Harness([KeyError("bug")] * 5)
    async with TestKafkaBroker(harness.broker) as broker:
        await broker.publish(b'{"amount": "3"}', "in")

    assert harness.calls == FAST.attempts
    [letter] = harness.letters
    assert letter.reason.startswith("failed 3 times: KeyError")


async def test_a_lasting_transient_failure_is_left_for_redelivery_not_dead_lettered() -> None:
    harness = Harness([TransientError("database down")] * 10)
    async with TestKafkaBroker(harness.broker) as broker:
        with pytest.raises(TransientError):
            await broker.publish(b'{"amount": "4"}', "in")

    assert harness.calls == FAST.transient_attempts
    assert harness.letters == []


def test_dead_letter_round_trips_through_the_contract_codec() -> None:
    letter = build_dead_letter(
        service="pricing",
        reason="bad",
        topic="t",
        partition=1,
        offset=2,
        key=None,
        value=b"\x00\xff",
        occurred_at=NOW,
    )

    assert decode(letter.model_dump_json(), DeadLetter) == letter


RUN = "3f2c1a7e-9d8b-4c6a-8e5f-2b1d0c9a8e7f"


class FailingProducer:
    """Innermost publish middleware standing in for a producer whose sends to `out` raise
    `errors` (one each) before they go through."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = errors
        self.sent = 0

    def __call__(self, _msg: object, /, *, context: object) -> "FailingProducer._Scope":  # noqa: ARG002
        return FailingProducer._Scope(self)

    class _Scope:
        def __init__(self, owner: "FailingProducer") -> None:
            self.owner = owner

        async def __aenter__(self) -> "FailingProducer._Scope":
            return self

        async def __aexit__(self, *_: object) -> bool:
            return False

        async def consume_scope(self, call_next: Any, msg: Any) -> Any:
            return await call_next(msg)

        async def publish_scope(self, call_next: Any, cmd: Any) -> Any:
            if cmd.destination != "out":
                return await call_next(cmd)
            if self.owner.errors:
                raise self.owner.errors.pop(0)
            self.owner.sent += 1
            return await call_next(cmd)


class Renewals:
    """A `ProducerRenewal` over a stand-in producer: counts replacements."""

    @staticmethod
    def make() -> ProducerRenewal:
        async def install(_: object) -> None:
            return None

        class Fresh:
            async def start(self) -> None:
                return None

            async def stop(self) -> None:
                return None

        return ProducerRenewal(lambda: None, install, Fresh, "rules")  # type: ignore[arg-type]


class OutputHarness:
    """A handler with an output topic, the dead-letter middleware and a failing producer."""

    def __init__(self, errors: list[BaseException], max_failed_deliveries: int = 3) -> None:
        self.letters: list[DeadLetter] = []
        self.failures: list[RunFailed] = []
        self.renewal = Renewals.make()
        self.producer = FailingProducer(errors)
        self.broker = KafkaBroker()
        self.broker.add_middleware(
            DeadLetterMiddleware(
                "rules",
                self.collect,
                policy=FAST,
                fail_run=self.fail,
                renewal=self.renewal,
                max_failed_deliveries=max_failed_deliveries,
            )
        )
        self.broker.add_middleware(self.producer)

        @self.broker.subscriber("in", decoder=contract_decoder(Amount), **consumer_options("g"))
        @self.broker.publisher("out")
        async def handle(message: Amount) -> bytes:
            return b'{"amount": "%s"}' % str(message.amount).encode()

    async def collect(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    async def fail(self, event: RunFailed) -> None:
        self.failures.append(event)


async def test_a_send_the_broker_refuses_replaces_the_producer_and_is_sent_again() -> None:
    harness = OutputHarness([OutOfOrderSequenceNumber(), OutOfOrderSequenceNumber()])
    async with TestKafkaBroker(harness.broker) as broker:
        await broker.publish(b'{"amount": "5"}', "in", key=f"{RUN}:0".encode())

    assert harness.renewal.renewals == 2
    assert harness.producer.sent == 1
    assert harness.renewal.failing_since is None
    assert harness.letters == []


async def test_a_send_nobody_waited_for_that_fails_still_replaces_the_producer() -> None:
    renewal = Renewals.make()
    scope = DeadLetterMiddleware("ingest", None, renewal=renewal)(None, context=None)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[object] = loop.create_future()

    async def send_without_confirm(_cmd: object) -> asyncio.Future[object]:
        return pending

    future = await scope.publish_scope(send_without_confirm, object())
    assert future is pending
    assert renewal.renewals == 0
    pending.set_exception(OutOfOrderSequenceNumber())
    with pytest.raises(OutOfOrderSequenceNumber):
        await future
    for _ in range(10):
        await asyncio.sleep(0)
    assert renewal.renewals == 1
    assert renewal.generation == 1


async def test_a_send_nobody_waited_for_that_succeeds_keeps_the_producer() -> None:
    renewal = Renewals.make()
    renewal.failed(OutOfOrderSequenceNumber())
    scope = DeadLetterMiddleware("ingest", None, renewal=renewal)(None, context=None)  # type: ignore[arg-type]
    pending: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def send_without_confirm(_cmd: object) -> asyncio.Future[object]:
        return pending

    await scope.publish_scope(send_without_confirm, object())
    assert renewal.failing_since is not None
    pending.set_result(None)
    await asyncio.sleep(0)
    assert renewal.failing_since is None
    assert renewal.renewals == 0


async def test_an_output_that_can_never_be_published_is_dead_lettered_and_fails_its_run() -> None:
    harness = OutputHarness([MessageSizeTooLargeError()] * 3, max_failed_deliveries=3)
    async with TestKafkaBroker(harness.broker) as broker:
        for _ in range(2):  # each publish is one delivery of the same record
            with pytest.raises(MessageSizeTooLargeError):
                await broker.publish(b'{"amount": "6"}', "in", key=f"{RUN}:4".encode())
        await broker.publish(b'{"amount": "6"}', "in", key=f"{RUN}:4".encode())

    [letter] = harness.letters
    assert letter.reason.startswith("delivered 3 times, failed: MessageSizeTooLargeError")
    [failure] = harness.failures
    assert str(failure.run_id) == RUN
    assert failure.phase == "eligibility"
    assert "dead-lettered" in failure.error
    assert harness.renewal.renewals == 0


async def dead_letter_undecodable(
    service: str, topic: str, keys: list[bytes]
) -> tuple[list[DeadLetter], list[RunFailed]]:
    """Undecodable records with these keys through `service`'s dead-letter middleware: the
    letters it sets aside and the runs it fails."""
    failures: list[RunFailed] = []
    letters: list[DeadLetter] = []

    async def fail(event: RunFailed) -> None:
        failures.append(event)

    async def collect(letter: DeadLetter) -> None:
        letters.append(letter)

    broker = KafkaBroker()
    broker.add_middleware(DeadLetterMiddleware(service, collect, policy=FAST, fail_run=fail))

    @broker.subscriber(topic, decoder=contract_decoder(Amount), **consumer_options("g"))
    async def handle(_message: Amount) -> None:
        return None

    async with TestKafkaBroker(broker) as test_broker:
        for key in keys:
            await test_broker.publish(b"{not json", topic, key=key)
    return letters, failures


async def test_a_dead_lettered_record_of_a_run_fails_the_run() -> None:
    letters, failures = await dead_letter_undecodable(
        "pricing", "in", [f"{RUN}:2".encode(), b"not-a-run"]
    )
    assert len(letters) == 2
    [failure] = failures
    assert str(failure.run_id) == RUN
    assert failure.phase == "pricing"
    assert failure.error.startswith("a record of this run could not be processed")


async def test_a_dead_lettered_review_event_keyed_by_its_run_fails_no_run() -> None:
    # Auto decisions are keyed `{run_id}:{batch_seq}`, case events by the case id.
    letters, failures = await dead_letter_undecodable(
        "reporting", "loan-engine.reviews.v1", [f"{RUN}:2".encode()]
    )
    assert len(letters) == 1
    assert failures == []
