"""From Kafka records to read-model rows (pure)."""

from decimal import Decimal

from contracts import topics, wire
from contracts.codec import encode
from services.gateway.projector.batches import EXCEPTION_COLUMNS, LOAN_COLUMNS, dispositioned_rows
from services.gateway.projector.plan import Record, plan
from services.gateway.runs.quality import validity_420
from services.gateway.tables import LOAN_FIELD_COLUMNS
from tests.unit.gateway.gateway_events import RunScenario, to_record


def test_a_whole_run_plans_its_events_batches_and_loans() -> None:
    scenario = RunScenario(loans=12, batch_size=5, sales_team_id="team-a")
    chunk = plan(scenario.records())
    assert chunk.rejected == []
    assert [e.event_type for e in chunk.run_events] == [
        "run.requested",
        "run.started",
        "run.tape_ingested",
        "run.outputs_written",
        "run.completed",
    ]
    assert len(chunk.reports) == 8  # outputs written and run completed each name four
    assert sorted({(b.stage, b.batch_seq, b.loan_count) for b in chunk.batches}) == sorted(
        (stage, seq, count)
        for stage in ("ingested", "evaluated", "priced", "dispositioned")
        for seq, count in ((0, 5), (1, 5), (2, 2))
    )
    loans = [
        dict(zip(LOAN_COLUMNS, row, strict=True)) for r in chunk.dispositioned for row in r.loans
    ]
    assert [loan["seq"] for loan in loans] == list(range(1, 13))
    assert {loan["sales_team_id"] for loan in loans} == {"team-a"}
    assert {loan["run_id"] for loan in loans} == {str(scenario.run_id)}


def test_dispositioned_rows_sum_quality_and_count_exceptions() -> None:
    scenario = RunScenario(loans=10, batch_size=10, duplicate_every=3)
    events = scenario.dispositioned()
    batch = next(b for t, b in scenario.loan_batches() if t is topics.LOANS_DISPOSITIONED)
    rows = dispositioned_rows(encode(batch))
    assert rows.stats["loans"] == 10
    assert rows.stats["exceptions"] == sum(len(e.exceptions) for e in events)
    assert rows.stats["unique_loans"] == sum(e.quality.unique for e in events)
    assert rows.stats["validity_420"] == sum(
        validity_420(e.quality.numeric_present, e.quality.numeric_valid) for e in events
    )
    assert rows.stats["dq_score"] == sum((e.quality.dq_score for e in events), Decimal(0))
    assert sum(rows.exception_counts.values()) == rows.stats["exceptions"]
    per_loan: dict[object, list[int]] = {}
    for row in rows.exceptions:
        exception = dict(zip(EXCEPTION_COLUMNS, row, strict=True))
        per_loan.setdefault(exception["loan_id"], []).append(exception["ordinal"])
    assert all(ordinals == list(range(len(ordinals))) for ordinals in per_loan.values())
    loans = [dict(zip(LOAN_COLUMNS, row, strict=True)) for row in rows.loans]
    duplicate = next(loan for loan in loans if loan["seq"] == 3)
    assert (duplicate["duplicate_of_file"], duplicate["duplicate_of_row"]) == ("tape.csv", 1)
    assert duplicate["extra"] == '{"state":"NY"}'


def test_loan_batches_are_counted_from_headers_without_reading_the_value() -> None:
    record = Record(
        topic=topics.LOANS_PRICED.name,
        partition=2,
        offset=7,
        key=b"0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d:4",
        value=b"not even json",
        headers=(("event-type", b"loans.priced"), ("loan-count", b"500")),
    )
    chunk = plan([record])
    assert chunk.rejected == []
    assert (chunk.batches[0].batch_seq, chunk.batches[0].loan_count) == (4, 500)


def test_a_batch_without_headers_is_counted_from_its_value() -> None:
    scenario = RunScenario(loans=3, batch_size=3)
    topic, batch = scenario.loan_batches()[0]
    record = to_record(topic, "no-key", batch, 0, scenario.created_at)
    bare = Record(record.topic, 0, 0, None, record.value)
    chunk = plan([bare])
    assert (chunk.batches[0].run_id, chunk.batches[0].loan_count) == (scenario.run_id, 3)


def test_unreadable_records_are_set_aside_with_a_reason() -> None:
    records = [
        Record(topics.RUNS.name, 0, 1, b"k", b'{"event_type": "run.unknown"}'),
        Record(topics.LOANS_DISPOSITIONED.name, 0, 2, b"k", b"[]"),
        Record(topics.DEAD_LETTERS.name, 0, 3, b"k", None),
    ]
    chunk = plan(records)
    assert [r.record.offset for r in chunk.rejected] == [1, 2, 3]
    assert all(r.reason for r in chunk.rejected)


def test_producer_tape_messages_track_rows_and_the_end_marker() -> None:
    rows = [
        Record(
            topics.LOAN_TAPES.name,
            0,
            i,
            b"T-1",
            f'{{"kind":"row","tape_id":"T-1","row":{i},"fields":{{}}}}'.encode(),
        )
        for i in (1, 3, 2)
    ]
    end = Record(
        topics.LOAN_TAPES.name,
        0,
        4,
        b"T-1",
        b'{"kind":"end","tape_id":"T-1","rows":3,"pdate":"2026-11-23","irr_target":"8.05"}',
    )
    tape = plan([*rows, end]).tapes["T-1"]
    assert (tape.max_row, tape.expected_rows, tape.irr_target) == (3, 3, Decimal("8.05"))


def test_loan_fact_field_columns_follow_the_wire_loan_fields_order() -> None:
    # dispositioned_rows spreads the decoded fields positionally into these columns.
    assert tuple(LOAN_FIELD_COLUMNS) == wire.LoanFields.__struct_fields__
