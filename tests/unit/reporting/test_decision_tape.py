"""The decision tape's rows (SPEC §8), pure: the loan's report row, then its decision's cells."""

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from services.reporting.decision_tape import (
    DECISION_TAPE_COLUMNS,
    FinalDecision,
    header,
    tape_row,
)
from services.reporting.reports import LOAN_COLUMNS

ANALYST = UUID("aaaaaaaa-0000-4000-8000-000000000001")
SENIOR = UUID("aaaaaaaa-0000-4000-8000-000000000002")
AT = datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=UTC)
ROW = (
    "LN-1,250000.00,6.875,80,36,742,sfr,primary,purchase,300000,310000,"
    "to_purchase,-1.1750,97.0625\r\n"
)


def decision(**changes: object) -> FinalDecision:
    values: dict[str, object] = {
        "decision_type": "auto_approve",
        "score": 912,
        "terms": None,
        "conditions": (),
        "decided_by": None,
        "approved_by": None,
        "decided_at": AT,
    }
    return FinalDecision(**{**values, **changes})  # type: ignore[arg-type]


def cells(line: str) -> list[str]:
    return next(csv.reader(io.StringIO(line)))


def test_the_header_is_the_fourteen_loan_columns_then_the_decision_columns() -> None:
    assert header() == ",".join(DECISION_TAPE_COLUMNS) + "\r\n"
    assert DECISION_TAPE_COLUMNS[: len(LOAN_COLUMNS)] == LOAN_COLUMNS
    assert DECISION_TAPE_COLUMNS[len(LOAN_COLUMNS) :] == (
        "decision_type",
        "score",
        "terms",
        "conditions",
        "decided_by",
        "override_approved_by",
        "decided_at",
    )


def test_an_auto_approval_keeps_the_loan_row_verbatim_and_adds_the_machine_decision() -> None:
    line = tape_row(ROW, decision())

    assert line == ROW[:-2] + ",auto_approve,912,,,,,2026-12-07T09:30:15Z\r\n"


def test_an_approval_with_conditions_lists_each_condition_in_order() -> None:
    line = tape_row(
        ROW,
        decision(
            decision_type="analyst_approve_with_conditions",
            score=640,
            terms="Standard terms, 30 days",
            conditions=(("documentation", "Two bank statements"), ("guarantor", "Parent, signed")),
            decided_by=ANALYST,
        ),
    )

    row = cells(line)
    assert row[: len(LOAN_COLUMNS)] == cells(ROW)
    assert row[len(LOAN_COLUMNS) :] == [
        "analyst_approve_with_conditions",
        "640",
        "Standard terms, 30 days",
        "documentation: Two bank statements; guarantor: Parent, signed",
        str(ANALYST),
        "",
        "2026-12-07T09:30:15Z",
    ]
    assert line.endswith("\r\n")


def test_an_approved_override_names_the_second_person_and_the_time_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    line = tape_row(
        ROW,
        decision(
            decision_type="analyst_approve",
            score=180,
            decided_by=ANALYST,
            approved_by=SENIOR,
            decided_at=datetime(2026, 12, 7, 11, 0, tzinfo=paris),
        ),
    )

    assert cells(line)[-3:] == [str(ANALYST), str(SENIOR), "2026-12-07T10:00:00Z"]


def test_text_a_person_typed_is_guarded_against_formula_injection() -> None:
    line = tape_row(
        ROW,
        decision(terms="=HYPERLINK(1)", conditions=(("other", "+1 month"),), decided_by=ANALYST),
    )

    row = cells(line)
    assert row[len(LOAN_COLUMNS) + 2] == "'=HYPERLINK(1)"
    assert row[len(LOAN_COLUMNS) + 3] == "other: +1 month"


def test_a_row_that_is_not_one_crlf_line_is_refused() -> None:
    with pytest.raises(ValueError, match="CRLF"):
        tape_row(ROW[:-2], decision())
