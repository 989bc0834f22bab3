"""The msgspec wire types agree with the pydantic contracts: same bytes, same accept/reject."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from contracts import loans, wire
from contracts.codec import DecodeError, decode, encode

PAIRS: tuple[tuple[type[BaseModel], type[msgspec.Struct]], ...] = (
    (loans.IngestedBatch, wire.IngestedBatch),
    (loans.EvaluatedBatch, wire.EvaluatedBatch),
    (loans.PricedBatch, wire.PricedBatch),
    (loans.DispositionedBatch, wire.DispositionedBatch),
)
EVENT_OF: dict[type[BaseModel], type[BaseModel]] = {
    loans.IngestedBatch: loans.LoanIngested,
    loans.EvaluatedBatch: loans.LoanEvaluated,
    loans.PricedBatch: loans.LoanPriced,
    loans.DispositionedBatch: loans.LoanDispositioned,
}

# Strings come from UTF-8 text, so they never hold a lone surrogate.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
maybe_text = st.none() | text
decimals = st.integers(0, 6).flatmap(
    lambda places: st.decimals(allow_nan=False, allow_infinity=False, places=places)
)
zones = (
    st.none()
    | st.just(UTC)
    | st.integers(-23 * 60, 23 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones
)
rows = st.integers(1, 2**40)

loan_fields = st.builds(
    loans.LoanFields, **dict.fromkeys(loans.LoanFields.model_fields, maybe_text)
)
loan_records = st.builds(
    loans.LoanRecord,
    loan_id=st.uuids(),
    seq=rows,
    source_file=text,
    row=rows,
    fields=loan_fields,
    invalid=st.lists(text, max_size=3).map(tuple),
    extra=st.dictionaries(text, text, max_size=3),
    duplicate_of=st.none() | st.builds(loans.RowRef, source_file=text, row=rows),
)
loan_exceptions = st.builds(
    loans.LoanException,
    exception_type=text,
    category=st.sampled_from(["data_quality", "credit", "collateral", "compliance", "pricing"]),
    severity=st.sampled_from(["hard", "soft"]),
    message=text,
    rejection_criteria=text,
)
qualities = st.builds(
    loans.QualityCounts,
    present_fields=st.integers(0, 11),
    numeric_present=st.integers(0, 7),
    numeric_valid=st.integers(0, 7),
    unique=st.booleans(),
    rules_passed=st.integers(0, 10),
    dq_score=decimals,
)
pricings = st.none() | st.builds(loans.Pricing, pricing_spread=text, final_price=text)
run_params = st.builds(
    loans.RunParams,
    irr_target=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99.9999"), places=4),
    pdate=st.dates(min_value=date(1900, 1, 1)),
    sales_team_id=maybe_text,
)


def events(event_model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    """Events of one loan type with every field the type has."""
    fields: dict[str, Any] = {
        "event_id": st.uuids(),
        "run_id": st.uuids(),
        "occurred_at": moments,
        "producer": text,
        "loan": loan_records,
    }
    names = event_model.model_fields
    if "quality" in names:
        fields |= {
            "exceptions": st.lists(loan_exceptions, max_size=3).map(tuple),
            "quality": qualities,
            "rule_set_version": text,
        }
    if "pricing" in names:
        fields["pricing"] = pricings
    if "disposition" in names:
        fields["disposition"] = st.sampled_from(["to_purchase", "projected", "rejected"])
    return st.builds(event_model, **fields)


@st.composite
def batches(draw: st.DrawFn) -> tuple[BaseModel, type[msgspec.Struct]]:
    model, struct = draw(st.sampled_from(PAIRS))
    batch = model(
        run_id=draw(st.uuids()),
        batch_seq=draw(st.integers(0, 10**6)),
        params=draw(run_params),
        events=tuple(draw(st.lists(events(EVENT_OF[model]), max_size=3))),
    )
    return batch, struct


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_wire_structs_encode_every_generated_batch_to_the_same_bytes_as_pydantic(
    case: tuple[BaseModel, type[msgspec.Struct]],
) -> None:
    batch, struct = case
    data = encode(batch)
    decoded = decode(data, struct)
    assert encode(decoded) == data
    assert decode(encode(decoded), type(batch)) == batch


def valid_batch() -> dict[str, Any]:
    """A priced batch of one loan as plain JSON data."""
    return {
        "schema_version": 1,
        "run_id": "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
        "batch_seq": 0,
        "params": {"irr_target": "8.05", "pdate": "2026-11-23", "sales_team_id": None},
        "batch_type": "loans.priced",
        "events": [
            {
                "event_id": "1b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
                "event_type": "loan.priced",
                "schema_version": 1,
                "run_id": "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
                "occurred_at": "2026-11-23T09:30:00Z",
                "producer": "pricing",
                "loan": {
                    "loan_id": "2b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
                    "seq": 1,
                    "source_file": "tape.csv",
                    "row": 1,
                    "fields": {"loan_amount": "100000", "note_rate": "7.5"},
                    "invalid": [],
                    "extra": {},
                    "duplicate_of": None,
                },
                "exceptions": [
                    {
                        "exception_type": "dti_ratio",
                        "category": "credit",
                        "severity": "soft",
                        "message": "DTI above 45",
                        "rejection_criteria": "notebook.dti",
                    }
                ],
                "quality": {
                    "present_fields": 2,
                    "numeric_present": 2,
                    "numeric_valid": 2,
                    "unique": True,
                    "rules_passed": 9,
                    "dq_score": "55.00",
                },
                "rule_set_version": "2026.11.1",
                "pricing": {"pricing_spread": "-0.5500", "final_price": "98.6250"},
            }
        ],
    }


def with_change(path: tuple[Any, ...], value: Any) -> bytes:
    """The valid batch with the value at `path` replaced (or removed, for `REMOVE`)."""
    data = valid_batch()
    target = data
    for step in path[:-1]:
        target = target[step]
    if value is REMOVE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return msgspec.json.encode(data)


REMOVE = object()
EVENT = ("events", 0)
BAD_INPUTS: dict[str, bytes] = {
    "not JSON": b"{not json",
    "not an object": b"[1, 2]",
    "truncated": msgspec.json.encode(valid_batch())[:-5],
    "missing run_id": with_change(("run_id",), REMOVE),
    "run_id not a uuid": with_change(("run_id",), "run-1"),
    "negative batch_seq": with_change(("batch_seq",), -1),
    "batch_seq as text with letters": with_change(("batch_seq",), "one"),
    "wrong batch_type": with_change(("batch_type",), "loans.evaluated"),
    "unknown batch field": with_change(("surprise",), 1),
    "irr_target zero": with_change(("params", "irr_target"), "0"),
    "irr_target one hundred": with_change(("params", "irr_target"), "100"),
    "irr_target not a number": with_change(("params", "irr_target"), "high"),
    "irr_target NaN": with_change(("params", "irr_target"), "NaN"),
    "pdate not a date": with_change(("params", "pdate"), "23/11/2026"),
    "events not a list": with_change(("events",), {}),
    "wrong event_type": with_change((*EVENT, "event_type"), "loan.ingested"),
    "unknown event field": with_change((*EVENT, "surprise"), True),
    "occurred_at not a datetime": with_change((*EVENT, "occurred_at"), "yesterday"),
    "missing quality": with_change((*EVENT, "quality"), REMOVE),
    "row zero": with_change((*EVENT, "loan", "row"), 0),
    "seq zero": with_change((*EVENT, "loan", "seq"), 0),
    "field a number": with_change((*EVENT, "loan", "fields", "note_rate"), 7.5),
    "unknown loan field": with_change((*EVENT, "loan", "fields", "ltv"), "80"),
    "extra value not text": with_change((*EVENT, "loan", "extra"), {"a": 1}),
    "present_fields above 11": with_change((*EVENT, "quality", "present_fields"), 12),
    "rules_passed negative": with_change((*EVENT, "quality", "rules_passed"), -1),
    "dq_score Infinity": with_change((*EVENT, "quality", "dq_score"), "Infinity"),
    "unknown severity": with_change((*EVENT, "exceptions", 0, "severity"), "fatal"),
    "unknown category": with_change((*EVENT, "exceptions", 0, "category"), "mood"),
    "pricing without price": with_change((*EVENT, "pricing", "final_price"), REMOVE),
}


def test_the_valid_batch_is_accepted_by_both_with_the_same_bytes() -> None:
    data = msgspec.json.encode(valid_batch())
    assert encode(decode(data, wire.PricedBatch)) == encode(decode(data, loans.PricedBatch))


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_wire_structs_reject_every_bad_batch_pydantic_rejects(name: str) -> None:
    data = BAD_INPUTS[name]
    with pytest.raises(ValidationError):
        decode(data, loans.PricedBatch)
    with pytest.raises(DecodeError):
        decode(data, wire.PricedBatch)


def test_wire_structs_mirror_the_contracts_field_order() -> None:
    pairs = [
        *PAIRS,
        (loans.LoanRecord, wire.LoanRecord),
        (loans.LoanFields, wire.LoanFields),
        (loans.QualityCounts, wire.QualityCounts),
        (loans.LoanException, wire.LoanException),
        (loans.RunParams, wire.RunParams),
        (loans.LoanDispositioned, wire.LoanDispositioned),
    ]
    for model, struct in pairs:
        assert struct.__struct_fields__ == tuple(model.model_fields), struct.__name__
