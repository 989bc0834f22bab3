"""From Kafka records to read-model rows (pure)."""

import gc
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import orjson
import pytest
from pydantic import BaseModel

from contracts import topics, wire
from contracts.codec import encode
from services.gateway.projector import batches
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
        dict(zip(LOAN_COLUMNS, row, strict=True)) for r in chunk.dispositioned for row in r.loans()
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
    for row in rows.exceptions():
        exception = dict(zip(EXCEPTION_COLUMNS, row, strict=True))
        per_loan.setdefault(exception["loan_id"], []).append(exception["ordinal"])
    assert all(ordinals == list(range(len(ordinals))) for ordinals in per_loan.values())
    loans = [dict(zip(LOAN_COLUMNS, row, strict=True)) for row in rows.loans()]
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


# The projector's own read types and the wire types they mirror (field for field, same types).
READ_TYPES: dict[type, type] = {
    batches.ProjectedBatch: wire.DispositionedBatch,
    batches.ProjectedParams: wire.RunParams,
    batches.ProjectedEvent: wire.LoanDispositioned,
    batches.ProjectedLoan: wire.LoanRecord,
    batches.ProjectedException: wire.LoanException,
    batches.ProjectedPricing: wire.Pricing,
    batches.ProjectedQuality: wire.QualityCounts,
}
# Read as text and checked as a UUID when its row is built (PgUUID), as asyncpg writes it.
CHECKED_WHEN_BUILT = {(batches.ProjectedLoan, "loan_id")}


def _same_type(read: msgspec.inspect.Type, written: msgspec.inspect.Type) -> bool:
    if isinstance(read, msgspec.inspect.StructType):
        return (
            isinstance(written, msgspec.inspect.StructType)
            and READ_TYPES.get(read.cls, read.cls) is written.cls
        )
    if type(read) is not type(written):
        return False
    if isinstance(read, msgspec.inspect.UnionType):
        pairs = zip(read.types, written.types, strict=True)  # type: ignore[attr-defined]
        return all(_same_type(a, b) for a, b in pairs)
    if isinstance(read, msgspec.inspect.VarTupleType):
        return _same_type(read.item_type, written.item_type)  # type: ignore[attr-defined]
    return read == written


def test_the_projector_reads_each_field_it_writes_with_its_wire_type_and_bounds() -> None:
    for read, written in READ_TYPES.items():
        wire_fields = {f.name: f for f in msgspec.inspect.type_info(written).fields}
        for f in msgspec.inspect.type_info(read).fields:
            assert f.name in wire_fields, f"{read.__name__}.{f.name} is not on the wire"
            if (read, f.name) in CHECKED_WHEN_BUILT:
                continue
            assert _same_type(f.type, wire_fields[f.name].type), f"{read.__name__}.{f.name}"
            assert f.required == wire_fields[f.name].required, f"{read.__name__}.{f.name}"


def _batch_model(scenario: RunScenario) -> BaseModel:
    return next(b for t, b in scenario.loan_batches() if t is topics.LOANS_DISPOSITIONED)


def _batch_json(scenario: RunScenario) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(encode(_batch_model(scenario)))
    return body


def test_loan_rows_carry_the_loan_id_and_the_dq_score_as_a_decimal() -> None:
    scenario = RunScenario(loans=4, batch_size=4)
    body = _batch_json(scenario)
    rows = dispositioned_rows(orjson.dumps(body))
    loans = [dict(zip(LOAN_COLUMNS, row, strict=True)) for row in rows.loans()]
    assert [UUID(loan["loan_id"]) for loan in loans] == [
        UUID(event["loan"]["loan_id"]) for event in body["events"]
    ]
    assert [loan["dq_score"] for loan in loans] == [
        Decimal(event["quality"]["dq_score"]) for event in body["events"]
    ]


@pytest.mark.parametrize("dq_score", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_a_batch_with_a_dq_score_that_is_not_a_finite_number_is_refused(dq_score: str) -> None:
    body = _batch_json(RunScenario(loans=3, batch_size=3))
    body["events"][1]["quality"]["dq_score"] = dq_score
    with pytest.raises(ValueError, match="finite"):
        dispositioned_rows(orjson.dumps(body))


def test_infinite_dq_scores_of_both_signs_in_one_batch_are_refused() -> None:
    body = _batch_json(RunScenario(loans=3, batch_size=3))
    body["events"][0]["quality"]["dq_score"] = "Infinity"
    body["events"][2]["quality"]["dq_score"] = "-Infinity"
    with pytest.raises(ValueError, match="finite"):
        dispositioned_rows(orjson.dumps(body))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("loan", "loan_id"), "not-a-uuid"),
        (("loan", "seq"), 0),
        (("quality", "present_fields"), 12),
        (("disposition",), "approved"),
        (("loan", "fields", "surprise"), "x"),
    ],
)
def test_a_dispositioned_batch_with_a_bad_loan_is_set_aside(
    path: tuple[str, ...], value: object
) -> None:
    scenario = RunScenario(loans=3, batch_size=3)
    body = _batch_json(scenario)
    target = body["events"][0]
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    record = Record(topics.LOANS_DISPOSITIONED.name, 0, 9, b"k", orjson.dumps(body))
    chunk = plan([record])
    assert [r.record.offset for r in chunk.rejected] == [9]
    assert chunk.dispositioned == []


def test_a_planned_batch_keeps_its_loans_where_the_collector_does_not_look() -> None:
    # A chunk lives from planning to writing: tracked objects would be scanned by collections.
    scenario = RunScenario(loans=10, batch_size=10, duplicate_every=3)
    rows = dispositioned_rows(encode(_batch_model(scenario)))
    gc.collect()
    assert rows.stats["exceptions"] > 0
    assert not gc.is_tracked(rows.events)
    assert not any(gc.is_tracked(event) for event in rows.events)


def test_rows_are_built_afresh_on_every_pass() -> None:
    rows = dispositioned_rows(encode(_batch_model(RunScenario(loans=5, batch_size=5))))
    assert list(rows.loans()) == list(rows.loans())
    assert len(list(rows.loans())) == rows.stats["loans"] == 5
    assert len(list(rows.exceptions())) == rows.stats["exceptions"]
