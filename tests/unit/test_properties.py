"""Properties of the pure chain (rules, pricing, disposition, reports) over generated tapes."""

import csv
import io
import json
from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.loans import NUMERIC_FIELDS, LoanDispositioned, LoanRecord, RowRef
from services.reporting.domain import RunTotals
from services.reporting.reports import LOAN_COLUMNS, write_reports
from services.rules.domain import CURRENT_VERSION, RULE_SETS, parse_rule_set
from tests.factories import loan_record, process_loan, report_sinks

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUNDARIES = {
    "loan_amount": ["49999.99", "50000", "5000000", "5000000.01", "0", "1E+5", "250000.00"],
    "note_rate": ["0.99", "1.0", "8.05", "8.04995", "15.0", "15.01", "7.786"],
    "ltv_ratio": ["97.0", "97.01", "80", "-0.5"],
    "dti_ratio": ["50", "50.01", "35.0"],
    "credit_score": ["619", "620", "7.2E+2", "800"],
    "purchase_price": ["0", "0.01", "312500"],
    "appraisal_value": ["0", "315000"],
}
INVALID = ["abc", "1_000", "-$5", "=1+2", "720.5", "NaN"]
TEXT = {
    "property_type": ["SFR", " condo ", "2-4 Unit", "PUD", "Manufactured", "=cmd", "townhouse"],
    "occupancy_status": ["Primary", "SECOND HOME", "Investment", "vacation", "@x"],
    "loan_purpose": ["Purchase", "rate_term_refinance", "Cash_Out_Refinance", "construction"],
}
SELLER_NUMBERS = ["L1", "L2", "L3", "=HYPERLINK(1)", "+1", "-L-9", "E1"]

numbers = st.decimals(
    min_value=-10_000_000, max_value=10_000_000, allow_nan=False, allow_infinity=False, places=3
).map(str)


@st.composite
def loan_values(draw: st.DrawFn) -> tuple[dict[str, str | None], tuple[str, ...]]:
    """One row's field values as ingest leaves them, and which numeric fields are invalid."""
    values: dict[str, str | None] = {}
    invalid: list[str] = []
    for name in NUMERIC_FIELDS:
        kind = draw(st.sampled_from(["boundary", "boundary", "number", "missing", "invalid"]))
        if kind == "invalid":
            invalid.append(name)
            values[name] = draw(st.sampled_from(INVALID))
        elif kind == "missing":
            values[name] = None
        elif kind == "number" and name != "credit_score":
            values[name] = draw(numbers)
        else:
            values[name] = draw(st.sampled_from(BOUNDARIES[name]))
    for name, choices in TEXT.items():
        values[name] = draw(st.none() | st.sampled_from(choices))
    values["seller_loan_number"] = draw(st.none() | st.sampled_from(SELLER_NUMBERS))
    return values, tuple(invalid)


@st.composite
def tapes(draw: st.DrawFn) -> list[LoanRecord]:
    """A run's loans in tape order, duplicates flagged against their first occurrence."""
    first_seen: dict[str, RowRef] = {}
    loans = []
    for seq, (values, invalid) in enumerate(draw(st.lists(loan_values(), max_size=25)), start=1):
        number = values["seller_loan_number"]
        duplicate_of = None if number is None else first_seen.get(number)
        if number is not None and duplicate_of is None:
            first_seen[number] = RowRef(source_file="tape.csv", row=seq)
        loans.append(loan_record(seq=seq, invalid=invalid, duplicate_of=duplicate_of, **values))
    return loans


def run(
    tape: Sequence[LoanRecord], run_id: UUID = UUID(int=1)
) -> tuple[list[LoanDispositioned], dict[str, bytes], RunTotals]:
    # A fresh parse of the shipped rule set: the outcome may not depend on any cached state.
    rules = parse_rule_set(json.loads((RULE_SETS / f"{CURRENT_VERSION}.json").read_text("utf-8")))
    loans = [process_loan(loan, rule_set=rules, run_id=run_id) for loan in tape]
    totals = RunTotals()
    for loan in loans:
        totals.add(loan)
    sinks = report_sinks()
    write_reports(loans, sinks)
    return loans, {key: sink.getvalue() for key, sink in sinks.items()}, totals


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


@SETTINGS
@given(tapes())
def test_every_loan_lands_in_exactly_one_of_purchase_projected_rejected(
    tape: list[LoanRecord],
) -> None:
    loans, reports, totals = run(tape)
    purchase, projected = csv_rows(reports["purchase_tape"]), csv_rows(reports["projected_tape"])
    rejected = [loan for loan in loans if loan.disposition == "rejected"]
    assert len(purchase) + len(projected) + len(rejected) == len(tape) == totals.total_loans
    assert len(csv_rows(reports["rejection_report"])) == sum(
        len(loan.exceptions) for loan in rejected
    )
    for loan in loans:
        hard = any(exception.severity == "hard" for exception in loan.exceptions)
        assert (loan.disposition == "rejected") == hard
        assert (loan.disposition == "to_purchase") == (loan.pricing is not None)
    assert {row["disposition"] for row in purchase} <= {"to_purchase"}
    assert {row["disposition"] for row in projected} <= {"projected"}


@SETTINGS
@given(tapes())
def test_balances_add_up(tape: list[LoanRecord]) -> None:
    loans, reports, totals = run(tape)
    parsed = [
        Decimal(loan.fields.loan_amount)
        for loan in tape
        if loan.fields.loan_amount is not None and "loan_amount" not in loan.invalid
    ]
    assert totals.total_balance == sum(parsed, Decimal(0))
    by_disposition = {"to_purchase": Decimal(0), "projected": Decimal(0), "rejected": Decimal(0)}
    for loan, record in zip(loans, tape, strict=True):
        if record.fields.loan_amount is not None and "loan_amount" not in record.invalid:
            by_disposition[loan.disposition] += Decimal(record.fields.loan_amount)
    assert sum(by_disposition.values(), Decimal(0)) == totals.total_balance
    for key, disposition in (("purchase_tape", "to_purchase"), ("projected_tape", "projected")):
        written = [Decimal(row["loan_amount"]) for row in csv_rows(reports[key])]
        assert sum(written, Decimal(0)) == by_disposition[disposition]


@SETTINGS
@given(tapes())
def test_reports_are_a_pure_function_of_the_tape_and_parameters(tape: list[LoanRecord]) -> None:
    _, first, first_totals = run(tape, UUID(int=1))
    _, again, again_totals = run(tape, UUID(int=2))
    assert first == again
    assert first_totals == again_totals


@SETTINGS
@given(tapes())
def test_the_summary_counts_every_exception_once(tape: list[LoanRecord]) -> None:
    loans, reports, totals = run(tape)
    summary = csv_rows(reports["exception_summary"])
    assert sum(int(row["count"]) for row in summary) == totals.exceptions_count
    assert totals.exceptions_count == sum(len(loan.exceptions) for loan in loans)
    counts = [(-int(row["count"]), row["exception_type"]) for row in summary]
    assert counts == sorted(counts)


@SETTINGS
@given(tapes())
def test_a_purchased_loan_meets_every_hard_rule(tape: list[LoanRecord]) -> None:
    loans, reports, _ = run(tape)
    for row in csv_rows(reports["purchase_tape"]):
        assert Decimal("50000") <= Decimal(row["loan_amount"]) <= Decimal("5000000")
        assert Decimal(row["ltv_ratio"]) <= Decimal("97.0")
        assert row["dti_ratio"] != "" and Decimal(row["dti_ratio"]) <= Decimal("50.0")
        assert Decimal(row["credit_score"]) >= 620
        assert Decimal("1.0") <= Decimal(row["note_rate"]) <= Decimal("15.0")
        assert list(row) == list(LOAN_COLUMNS)
    for loan in loans:
        assert Decimal(0) <= loan.quality.dq_score <= Decimal(100)
        assert loan.quality.dq_score.as_tuple().exponent == -2
