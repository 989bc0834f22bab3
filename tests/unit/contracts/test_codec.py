from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from pydantic import ValidationError

from contracts.codec import decode, decode_union, encode
from contracts.ids import event_id
from contracts.loans import RunParams
from contracts.runs import RUN_EVENT, TapeIngested
from contracts.tapes import TAPE_MESSAGE, TapeEnd, TapeRow, decode_tape_message

RUN = UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")


def tape_ingested(balance: str) -> TapeIngested:
    return TapeIngested(
        event_id=event_id("run.tape_ingested", RUN),
        run_id=RUN,
        occurred_at=datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
        producer="ingest",
        total_loans=3,
        total_balance=Decimal(balance),
        batch_count=1,
        files=("tape.csv",),
        duplicates=0,
    )


@pytest.mark.parametrize("balance", ["550407801.74", "0.10", "1E+5", "123456789012345678901.0001"])
def test_decimals_round_trip_exactly_as_strings(balance: str) -> None:
    event = tape_ingested(balance)
    data = encode(event)
    assert f'"total_balance":"{balance}"'.encode() in data
    back = decode(data, TapeIngested)
    assert back == event
    assert str(back.total_balance) == balance
    assert encode(back) == data


def test_run_events_decode_by_their_event_type() -> None:
    event = tape_ingested("1.00")
    assert decode_union(encode(event), RUN_EVENT) == event


def test_producer_row_and_end_marker_parse_exactly_as_the_spec_shows() -> None:
    row = b'{"kind": "row", "tape_id": "T-2026-11-22-A", "row": 1, "fields": {"seller_loan_number": "L-1", "loan_amount": "250000"}}'  # noqa: E501
    end = b'{"kind": "end", "tape_id": "T-2026-11-22-A", "rows": 1000, "pdate": "2026-11-23", "irr_target": 8.05, "sales_team_id": null}'  # noqa: E501
    assert decode_union(row, TAPE_MESSAGE) == TapeRow(
        tape_id="T-2026-11-22-A",
        row=1,
        fields={"seller_loan_number": "L-1", "loan_amount": "250000"},
    )
    parsed = decode_union(end, TAPE_MESSAGE)
    assert isinstance(parsed, TapeEnd)
    assert parsed.irr_target == Decimal("8.05")
    assert parsed.pdate == date(2026, 11, 23)


def test_irr_target_outside_zero_to_hundred_is_rejected() -> None:
    with pytest.raises(ValidationError):
        RunParams(irr_target=Decimal("0"), pdate=date(2026, 11, 23))
    with pytest.raises(ValidationError):
        RunParams(irr_target=Decimal("100"), pdate=date(2026, 11, 23))


def test_unknown_fields_are_refused_so_a_contract_change_is_a_new_version() -> None:
    with pytest.raises(ValidationError):
        decode(encode(tape_ingested("1")).replace(b"}", b',"surprise":1}', 1), TapeIngested)


def test_an_end_marker_irr_target_sent_as_a_json_number_keeps_every_digit() -> None:
    end = (
        b'{"kind": "end", "tape_id": "T-1", "rows": 3, "pdate": "2026-11-23",'
        b' "irr_target": 8.050000000000000000001}'
    )
    parsed = decode_tape_message(end)
    assert isinstance(parsed, TapeEnd)
    assert parsed.irr_target == Decimal("8.050000000000000000001")


def test_decoding_a_tape_message_still_refuses_what_the_contract_refuses() -> None:
    with pytest.raises(ValidationError):
        decode_tape_message(b'{"kind": "end", "tape_id": "T-1", "rows": 3, "pdate": "x"}')
    with pytest.raises(ValidationError):
        decode_tape_message(
            b'{"kind": "end", "tape_id": "T-1", "rows": 3, "pdate": "2026-11-23",'
            b' "irr_target": 100}'
        )
