"""The FastStream metrics middleware, driven through TestKafkaBroker."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from faststream.exceptions import AckMessage
from faststream.kafka import KafkaBroker, TestKafkaBroker
from pydantic import BaseModel

from contracts.dead_letters import DeadLetter
from services.common.metrics import REGISTRY, EventMetricsMiddleware

PREFIX = "unit."


class PricedBatch(BaseModel):
    """A stand-in batch: what matters to the middleware is its `batch_type`."""

    batch_type: str = "loans.priced"
    loans: int


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def service() -> str:
    return f"test-{uuid4().hex[:8]}"


def a_broker(service: str) -> KafkaBroker:
    return KafkaBroker(
        middlewares=[EventMetricsMiddleware(service, stage="pricing", topic_prefix=PREFIX)]
    )


async def test_counts_consumed_events_by_their_event_type_header(service: str) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}loans.evaluated.v1")
    async def on_loans_evaluated(body: dict[str, int]) -> None:
        """Accept anything."""

    async with TestKafkaBroker(broker):
        for _ in range(2):
            await broker.publish(
                {"n": 1},
                f"{PREFIX}loans.evaluated.v1",
                headers={"event-type": "loans.evaluated", "loan-count": "500"},
            )
        await broker.publish({"n": 1}, f"{PREFIX}loans.evaluated.v1")
    labels = {"service": service, "topic": "loans.evaluated.v1"}
    assert value("loan_engine_events_consumed_total", **labels, event_type="loans.evaluated") == 2
    assert value("loan_engine_events_consumed_total", **labels, event_type="unknown") == 1


async def test_counts_the_loans_of_a_batch_from_its_loan_count_header(service: str) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}loans.evaluated.v1")
    async def on_loans_evaluated(body: dict[str, int]) -> None:
        """Accept anything."""

    async with TestKafkaBroker(broker):
        for count in ("500", "120"):
            await broker.publish(
                {"n": 1}, f"{PREFIX}loans.evaluated.v1", headers={"loan-count": count}
            )
    assert value("loan_engine_loans_processed_total", service=service, stage="pricing") == 620


async def test_a_failing_handler_counts_a_failure_and_no_loans(service: str) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}loans.evaluated.v1")
    async def on_loans_evaluated(body: dict[str, int]) -> None:
        """Fail every time."""
        raise ValueError(body)

    async with TestKafkaBroker(broker):
        with pytest.raises(ValueError):
            await broker.publish(
                {"n": 1}, f"{PREFIX}loans.evaluated.v1", headers={"loan-count": "500"}
            )
    failure = {"service": service, "handler": "on_loans_evaluated", "error": "ValueError"}
    assert value("loan_engine_handler_failures_total", **failure) == 1
    assert value("loan_engine_loans_processed_total", service=service, stage="pricing") == 0


async def test_a_record_acknowledged_after_an_error_counts_as_that_error(service: str) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}loans.evaluated.v1")
    async def on_loans_evaluated(body: dict[str, int]) -> None:
        """Set the record aside, as the dead-letter middleware does, and acknowledge it."""
        try:
            raise KeyError(body["missing"])
        except KeyError as error:
            raise AckMessage() from error

    async with TestKafkaBroker(broker):
        with pytest.raises(AckMessage):  # TestKafkaBroker hands it back; a real broker acks
            await broker.publish(
                {"n": 1}, f"{PREFIX}loans.evaluated.v1", headers={"loan-count": "9"}
            )
    failure = {"service": service, "handler": "on_loans_evaluated", "error": "KeyError"}
    assert value("loan_engine_handler_failures_total", **failure) == 1
    assert value("loan_engine_loans_processed_total", service=service, stage="pricing") == 0


async def test_a_plain_acknowledgement_is_a_success(service: str) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}loans.evaluated.v1")
    async def on_loans_evaluated(body: dict[str, int]) -> None:
        """Acknowledge early."""
        raise AckMessage(extra_options={"n": body["n"]})

    async with TestKafkaBroker(broker):
        with pytest.raises(AckMessage):  # TestKafkaBroker hands it back; a real broker acks
            await broker.publish(
                {"n": 1}, f"{PREFIX}loans.evaluated.v1", headers={"loan-count": "9"}
            )
    assert value("loan_engine_loans_processed_total", service=service, stage="pricing") == 9
    failures = [
        sample
        for metric in REGISTRY.collect()
        if metric.name == "loan_engine_handler_failures"
        for sample in metric.samples
        if sample.labels.get("service") == service
    ]
    assert failures == []


async def test_observes_handler_latency_under_the_handler_function_name(service: str) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}loans.evaluated.v1")
    async def on_loans_evaluated(body: dict[str, int]) -> None:
        """Accept anything."""

    async with TestKafkaBroker(broker):
        await broker.publish({"n": 1}, f"{PREFIX}loans.evaluated.v1")
    labels = {"service": service, "handler": "on_loans_evaluated"}
    assert value("loan_engine_handler_duration_seconds_count", **labels) == 1
    assert value("loan_engine_handler_duration_seconds_sum", **labels) > 0


async def test_counts_a_returned_batch_as_produced_by_its_batch_type(service: str) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}loans.evaluated.v1")
    @broker.publisher(f"{PREFIX}loans.priced.v1")
    async def on_loans_evaluated(body: dict[str, int]) -> PricedBatch:
        """Price the batch."""
        return PricedBatch(loans=body["n"])

    async with TestKafkaBroker(broker):
        await broker.publish({"n": 3}, f"{PREFIX}loans.evaluated.v1")
    produced = {"service": service, "topic": "loans.priced.v1", "event_type": "loans.priced"}
    assert value("loan_engine_events_produced_total", **produced) == 1


async def test_a_dead_letter_published_from_a_handler_counts_against_its_origin(
    service: str,
) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}loan-tapes.v1")
    async def on_tape_message(body: str) -> None:
        """Set every message aside."""
        letter = DeadLetter(
            event_id=uuid4(),
            service=service,
            reason="malformed tape message",
            topic=f"{PREFIX}loan-tapes.v1",
            partition=0,
            offset=0,
            payload=body,
            occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
        )
        await broker.publish(letter, f"{PREFIX}dead-letters.v1")

    async with TestKafkaBroker(broker):
        await broker.publish("not json", f"{PREFIX}loan-tapes.v1")
    origin = {"service": service, "topic": "loan-tapes.v1"}
    assert value("loan_engine_dead_letters_total", **origin) == 1


async def test_an_encoded_dead_letter_counts_against_the_topic_being_consumed(
    service: str,
) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}loans.ingested.v1")
    async def on_loans_ingested(body: str) -> None:
        """Set the record aside as already-encoded bytes, as the dead-letter middleware does."""
        await broker.publish(body.encode(), f"{PREFIX}dead-letters.v1")

    async with TestKafkaBroker(broker):
        await broker.publish("not a batch", f"{PREFIX}loans.ingested.v1")
    origin = {"service": service, "topic": "loans.ingested.v1"}
    assert value("loan_engine_dead_letters_total", **origin) == 1


async def test_a_consumed_topic_exports_its_dead_letter_series_at_zero(service: str) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}runs.v1")
    async def on_run_event(body: dict[str, int]) -> None:
        """Accept anything."""

    async with TestKafkaBroker(broker):
        await broker.publish({"n": 1}, f"{PREFIX}runs.v1")
    labels = {"service": service, "topic": "runs.v1"}
    assert REGISTRY.get_sample_value("loan_engine_dead_letters_total", labels) == 0


async def test_a_batch_subscriber_counts_every_record_and_every_loan(service: str) -> None:
    broker = a_broker(service)

    @broker.subscriber(f"{PREFIX}loans.priced.v1", batch=True)
    async def on_priced_batches(bodies: list[dict[str, int]]) -> None:
        """Accept anything."""

    async with TestKafkaBroker(broker):
        await broker.publish_batch(
            {"n": 1},
            {"n": 2},
            topic=f"{PREFIX}loans.priced.v1",
            headers={"event-type": "loans.priced", "loan-count": "10"},
        )
    consumed = {"service": service, "topic": "loans.priced.v1", "event_type": "loans.priced"}
    assert value("loan_engine_events_consumed_total", **consumed) == 2
    assert value("loan_engine_loans_processed_total", service=service, stage="pricing") == 20
