from decimal import Decimal

from contracts.loans import LoanException, Pricing, RowRef
from contracts.runs import Dispositions
from services.reporting.domain import RunTotals, disposition, exception_summary_rows
from tests.factories import loan_dispositioned, loan_exception, loan_record

PRICED = Pricing(pricing_spread="-0.2640", final_price="99.3400")
HARD = loan_exception()
SOFT = loan_exception(
    "missing_appraisal",
    category="data_quality",
    severity="soft",
    message="Appraisal value is missing or zero",
    rejection_criteria="notebook.appraisal_missing",
)


def test_a_loan_with_a_hard_exception_is_rejected_even_when_priced() -> None:
    assert disposition([SOFT, HARD], PRICED) == "rejected"


def test_a_priced_loan_without_hard_exceptions_is_to_purchase() -> None:
    assert disposition([SOFT], PRICED) == "to_purchase"
    assert disposition([], PRICED) == "to_purchase"


def test_an_eligible_loan_that_cannot_be_priced_is_projected() -> None:
    assert disposition([SOFT], None) == "projected"


def test_run_totals_count_every_loan_exception_and_disposition() -> None:
    totals = RunTotals()
    totals.add(loan_dispositioned(loan_record(seq=1), pricing=PRICED))
    totals.add(loan_dispositioned(loan_record(seq=2), exceptions=[SOFT], disposition="projected"))
    totals.add(
        loan_dispositioned(loan_record(seq=3), exceptions=[HARD, SOFT], disposition="rejected")
    )
    assert (totals.total_loans, totals.exceptions_count) == (3, 3)
    assert totals.dispositions() == Dispositions(to_purchase=1, projected=1, rejected=1)


def test_total_balance_sums_every_parsed_amount_including_duplicates_and_rejects() -> None:
    totals = RunTotals()
    loans = [
        loan_record(seq=1, loan_amount="250000.00"),
        loan_record(seq=2, loan_amount="1E+5", duplicate_of=RowRef(source_file="t.csv", row=1)),
        loan_record(seq=3, loan_amount="0.5"),
        loan_record(seq=4, loan_amount="1_000", invalid=("loan_amount",)),
        loan_record(seq=5, loan_amount=None),
    ]
    for loan in loans:
        totals.add(loan_dispositioned(loan, exceptions=[HARD], disposition="rejected"))
    assert str(totals.total_balance) == "350000.50"


def test_total_balance_is_exact_however_many_digits() -> None:
    totals = RunTotals()
    totals.add(loan_dispositioned(loan_record(loan_amount="1E+30")))
    totals.add(loan_dispositioned(loan_record(seq=2, loan_amount="0.01")))
    assert totals.total_balance == Decimal("1000000000000000000000000000000.01")


def test_total_balance_of_no_loans_is_zero() -> None:
    assert str(RunTotals().total_balance) == "0"


def test_summary_groups_by_type_and_severity_by_count_then_type() -> None:
    ltv = loan_exception(
        "ltv_ratio",
        message="LTV ratio exceeds maximum of 97%",
        rejection_criteria="notebook.ltv_exceeds_maximum",
    )
    assert exception_summary_rows([SOFT, ltv, HARD, ltv, HARD, SOFT]) == [
        ("dti_ratio", "credit", "hard", 2, "notebook.dti_exceeds_maximum", HARD.message),
        ("ltv_ratio", "credit", "hard", 2, "notebook.ltv_exceeds_maximum", ltv.message),
        (
            "missing_appraisal",
            "data_quality",
            "soft",
            2,
            "notebook.appraisal_missing",
            SOFT.message,
        ),
    ]


def test_summary_sample_is_the_first_message_in_tape_order() -> None:
    def duplicate(row: int) -> LoanException:
        return loan_exception(
            "duplicate_loan",
            category="data_quality",
            message=f"Duplicate seller loan number (first seen at row {row} of tape.csv)",
            rejection_criteria="notebook.duplicate_loan_number",
        )

    rows = exception_summary_rows([duplicate(11), duplicate(3), duplicate(7)])
    assert rows == [
        (
            "duplicate_loan",
            "data_quality",
            "hard",
            3,
            "notebook.duplicate_loan_number",
            "Duplicate seller loan number (first seen at row 11 of tape.csv)",
        )
    ]


def test_groups_of_one_type_and_count_are_ordered_by_severity() -> None:
    soft_dti = loan_exception(severity="soft")
    assert [(row[0], row[2], row[3]) for row in exception_summary_rows([soft_dti, HARD])] == [
        ("dti_ratio", "hard", 1),
        ("dti_ratio", "soft", 1),
    ]
