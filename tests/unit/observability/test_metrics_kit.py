"""The metric registry and its one-line helpers."""

import asyncio
from uuid import uuid4

import httpx
import pytest
from aiokafka import TopicPartition

from contracts.loans import LoanException
from services.common import metrics
from services.common.metrics import REGISTRY
from tests.unit.observability.fakes import FakeConsumer


def value(name: str, **labels: str) -> float:
    """A sample's current value, 0 when the series does not exist yet."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def a_service() -> str:
    return f"test-{uuid4().hex[:8]}"


def test_every_metric_name_starts_with_loan_engine() -> None:
    names = metrics.exported_metric_names()
    assert names
    assert all(name.startswith("loan_engine_") for name in names)


def test_exported_names_list_the_series_of_counters_and_histograms() -> None:
    names = metrics.exported_metric_names()
    assert "loan_engine_events_consumed_total" in names
    assert {
        "loan_engine_handler_duration_seconds_bucket",
        "loan_engine_handler_duration_seconds_sum",
        "loan_engine_handler_duration_seconds_count",
    } <= names
    assert "loan_engine_consumer_lag" in names


def test_every_metric_the_issue_asks_for_is_defined() -> None:
    names = metrics.exported_metric_names()
    assert {
        "loan_engine_events_consumed_total",
        "loan_engine_events_produced_total",
        "loan_engine_loans_processed_total",
        "loan_engine_handler_duration_seconds_bucket",
        "loan_engine_consumer_lag",
        "loan_engine_dead_letters_total",
        "loan_engine_loans_dispositioned_total",
        "loan_engine_exceptions_total",
        "loan_engine_runs_total",
        "loan_engine_run_duration_seconds_bucket",
        "loan_engine_http_requests_total",
        "loan_engine_http_request_duration_seconds_bucket",
        "loan_engine_projection_lag_seconds",
    } <= names


def test_dispositions_are_counted_by_value() -> None:
    before = value("loan_engine_loans_dispositioned_total", disposition="rejected")
    metrics.record_dispositions(["rejected", "to_purchase", "rejected"])
    assert value("loan_engine_loans_dispositioned_total", disposition="rejected") == before + 2


def test_exceptions_are_counted_by_type_and_severity() -> None:
    kind = f"rule_{uuid4().hex[:6]}"
    exception = LoanException(
        exception_type=kind,
        category="credit",
        severity="hard",
        message="DTI ratio exceeds maximum of 50%",
        rejection_criteria="notebook.dti_exceeds_maximum",
    )
    metrics.record_exceptions([exception, exception, exception])
    assert value("loan_engine_exceptions_total", exception_type=kind, severity="hard") == 3


def test_a_finished_run_counts_its_status_and_observes_its_duration() -> None:
    runs_before = value("loan_engine_runs_total", status="completed")
    durations_before = value("loan_engine_run_duration_seconds_count")
    metrics.record_run("completed", 42.5)
    metrics.record_run("started")
    assert value("loan_engine_runs_total", status="completed") == runs_before + 1
    assert value("loan_engine_run_duration_seconds_count") == durations_before + 1


def test_failed_runs_are_exported_at_zero_before_the_first_failure() -> None:
    assert REGISTRY.get_sample_value("loan_engine_runs_total", {"status": "failed"}) is not None


def test_projection_lag_is_the_age_of_the_applied_record() -> None:
    topic = f"loans.priced.v1-{uuid4().hex[:6]}"
    metrics.record_projection_lag(topic, record_timestamp_ms=1_000_000, now=1_012.5)
    assert value("loan_engine_projection_lag_seconds", topic=topic) == 12.5


def test_records_handled_outside_faststream_are_counted_with_their_loans() -> None:
    service = a_service()
    metrics.record_consumed(service, "loans.priced.v1", "loans.priced", loans=500)
    metrics.record_produced(service, "loans.dispositioned.v1", "loans.dispositioned", records=2)
    metrics.record_loans_processed(service, "ingest", 3)
    consumed = {"service": service, "topic": "loans.priced.v1", "event_type": "loans.priced"}
    assert value("loan_engine_events_consumed_total", **consumed) == 1
    produced = {
        "service": service,
        "topic": "loans.dispositioned.v1",
        "event_type": "loans.dispositioned",
    }
    assert value("loan_engine_events_produced_total", **produced) == 2
    assert value("loan_engine_loans_processed_total", service=service, stage=service) == 500
    assert value("loan_engine_loans_processed_total", service=service, stage="ingest") == 3


def test_dead_letter_without_a_topic_names_an_unknown_origin_outside_a_handler() -> None:
    service = a_service()
    metrics.record_dead_letter(service)
    assert value("loan_engine_dead_letters_total", service=service, topic="unknown") == 1


def test_logical_topic_strips_the_deployment_prefix_only() -> None:
    assert metrics.logical_topic("loan-engine.runs.v1") == "runs.v1"
    assert metrics.logical_topic("test-abc.runs.v1", "test-abc.") == "runs.v1"
    assert metrics.logical_topic("other.runs.v1") == "other.runs.v1"


def test_loan_count_header_ignores_malformed_values() -> None:
    assert metrics.loan_count("500") == 500
    assert metrics.loan_count("five hundred") == 0
    assert metrics.loan_count("-3") == 0
    assert metrics.loan_count(None) == 0


def test_event_type_comes_from_the_header_before_the_contract() -> None:
    class Batch:
        batch_type = "loans.priced"

    assert metrics.event_type_of(Batch(), {"event-type": "loans.evaluated"}) == "loans.evaluated"
    assert metrics.event_type_of(Batch(), {}) == "loans.priced"
    assert metrics.event_type_of(b"raw", None) == "unknown"


async def test_consumer_lag_is_highwater_minus_position_per_partition() -> None:
    service = a_service()
    p0, p1 = (
        TopicPartition("loan-engine.loans.ingested.v1", 0),
        TopicPartition("loan-engine.loans.ingested.v1", 1),
    )
    consumer = FakeConsumer({p0: 10, p1: 7}, {p0: 25, p1: 7})
    lags = await metrics.record_consumer_lag([consumer], service)
    assert lags == {("loans.ingested.v1", 0): 15, ("loans.ingested.v1", 1): 0}
    labels = {"service": service, "topic": "loans.ingested.v1", "partition": "0"}
    assert value("loan_engine_consumer_lag", **labels) == 15


async def test_consumer_lag_asks_the_broker_for_end_offsets_before_the_first_fetch() -> None:
    service = a_service()
    partition = TopicPartition("loan-engine.runs.v1", 2)
    consumer = FakeConsumer({partition: 3}, {partition: None}, end_offsets={partition: 9})
    lags = await metrics.record_consumer_lag([consumer], service)
    assert lags == {("runs.v1", 2): 6}
    assert consumer.asked_for == [[partition]]


async def test_partitions_lost_in_a_rebalance_leave_the_lag_gauge() -> None:
    service = a_service()
    p0, p1 = TopicPartition("loan-engine.runs.v1", 0), TopicPartition("loan-engine.runs.v1", 1)
    await metrics.record_consumer_lag([FakeConsumer({p0: 1, p1: 1}, {p0: 4, p1: 5})], service)
    await metrics.record_consumer_lag([FakeConsumer({p0: 2}, {p0: 4})], service)
    labels = {"service": service, "topic": "runs.v1"}
    lag = "loan_engine_consumer_lag"
    assert REGISTRY.get_sample_value(lag, {**labels, "partition": "0"}) == 2
    assert REGISTRY.get_sample_value(lag, {**labels, "partition": "1"}) is None


async def test_the_lag_reporter_survives_a_failed_probe() -> None:
    service = a_service()
    partition = TopicPartition("loan-engine.runs.v1", 0)
    calls = 0
    probed = asyncio.Event()

    def consumers() -> list[FakeConsumer]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("broker unavailable")
        probed.set()
        return [FakeConsumer({partition: 1}, {partition: 3})]

    reporter = asyncio.create_task(metrics.report_consumer_lag(consumers, service, interval=0.01))
    try:
        await asyncio.wait_for(probed.wait(), timeout=5)
        await asyncio.sleep(0.05)
    finally:
        reporter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reporter
    assert value("loan_engine_consumer_lag", service=service, topic="runs.v1", partition="0") == 2


async def test_the_metrics_app_serves_the_registry_in_text_format() -> None:
    app = metrics.metrics_asgi_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert "loan_engine_runs_total" in response.text
    body, content_type = metrics.render_latest()
    assert content_type.startswith("text/plain")
    assert b"loan_engine_consumer_lag" in body
