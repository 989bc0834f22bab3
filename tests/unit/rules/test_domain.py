from decimal import Decimal
from typing import Any

import pytest

from contracts.loans import RowRef
from contracts.wire import LoanException
from services.rules.domain import Evaluation, evaluate, load_rule_set
from tests.factories import loan_record

RULES = load_rule_set()


def evaluated(**fields: Any) -> Evaluation:
    return evaluate(loan_record(**fields), RULES)


def failed(**fields: Any) -> list[str]:
    return [exception.exception_type for exception in evaluated(**fields).exceptions]


def test_eligible_loan_raises_no_exception_and_passes_every_rule() -> None:
    evaluation = evaluated()
    assert evaluation.exceptions == ()
    assert evaluation.quality.rules_passed == 10


@pytest.mark.parametrize("amount", ["50000", "50000.00", "5000000", "5E+6"])
def test_loan_amount_range_includes_both_bounds(amount: str) -> None:
    assert failed(loan_amount=amount) == []


@pytest.mark.parametrize("amount", ["49999.99", "5000000.01", "0", "-250000"])
def test_loan_amount_range_rejects_amounts_outside_the_bounds(amount: str) -> None:
    assert failed(loan_amount=amount) == ["loan_amount_range"]


def test_accepts_ltv_of_exactly_ninety_seven() -> None:
    assert failed(ltv_ratio="97.0") == []


def test_rejects_loan_when_ltv_exceeds_ninety_seven() -> None:
    assert failed(ltv_ratio="97.01") == ["ltv_ratio"]


@pytest.mark.parametrize("dti", ["50", "50.0", "50.00", "-0.5"])
def test_accepts_dti_up_to_and_including_fifty(dti: str) -> None:
    assert failed(dti_ratio=dti) == []


def test_rejects_loan_when_dti_exceeds_fifty() -> None:
    assert failed(dti_ratio="50.01") == ["dti_ratio"]


def test_missing_dti_fails_the_dti_rule_by_its_default_of_one_hundred() -> None:
    assert failed(dti_ratio=None) == ["dti_ratio"]


def test_accepts_credit_score_of_exactly_six_hundred_twenty() -> None:
    assert failed(credit_score="620") == []


def test_accepts_credit_score_written_in_exponent_form() -> None:
    assert failed(credit_score="7.2E+2") == []


def test_rejects_loan_when_credit_score_is_below_six_hundred_twenty() -> None:
    assert failed(credit_score="619") == ["credit_score"]


@pytest.mark.parametrize("rate", ["1.0", "1", "15.0", "15"])
def test_note_rate_range_includes_one_and_fifteen(rate: str) -> None:
    assert failed(note_rate=rate) == []


@pytest.mark.parametrize("rate", ["0.99", "15.01"])
def test_note_rate_outside_one_to_fifteen_is_a_soft_pricing_exception(rate: str) -> None:
    (exception,) = evaluated(note_rate=rate).exceptions
    assert (exception.exception_type, exception.severity, exception.category) == (
        "note_rate_range",
        "soft",
        "pricing",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("property_type", " condo "),
        ("property_type", "SFR"),
        ("property_type", "2-4 Unit"),
        ("property_type", "TownHouse"),
        ("property_type", "pud"),
        ("occupancy_status", "SECOND HOME"),
        ("occupancy_status", " Investment"),
        ("loan_purpose", "Rate_Term_Refinance"),
        ("loan_purpose", "CASH_OUT_REFINANCE "),
    ],
)
def test_enumerated_values_are_compared_lower_cased_and_trimmed(field: str, value: str) -> None:
    assert failed(**{field: value}) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("property_type", "Manufactured"),
        ("property_type", "2-4unit"),
        ("occupancy_status", "vacation"),
        ("occupancy_status", "second_home"),
        ("loan_purpose", "cash out refinance"),
    ],
)
def test_values_outside_an_enumeration_fail_its_rule(field: str, value: str) -> None:
    assert failed(**{field: value}) == [field]


@pytest.mark.parametrize("field", ["occupancy_status", "loan_purpose"])
def test_missing_occupancy_or_purpose_fails_its_rule(field: str) -> None:
    assert failed(**{field: None}) == [field]


@pytest.mark.parametrize(
    ("field", "rule"),
    [("purchase_price", "missing_purchase_price"), ("appraisal_value", "missing_appraisal")],
)
@pytest.mark.parametrize("value", [None, "0", "0.00", "-1"])
def test_missing_or_zero_price_and_appraisal_are_soft_exceptions(
    field: str, rule: str, value: str | None
) -> None:
    evaluation = evaluated(**{field: value})
    assert [(e.exception_type, e.severity) for e in evaluation.exceptions] == [(rule, "soft")]


def test_a_small_positive_purchase_price_passes() -> None:
    assert failed(purchase_price="0.01", appraisal_value="1E-2") == []


def test_failing_rules_are_reported_in_table_order() -> None:
    assert failed(
        note_rate="16",
        appraisal_value=None,
        purchase_price="0",
        loan_purpose="x",
        occupancy_status="x",
        property_type="x",
        credit_score="500",
        dti_ratio="60",
        ltv_ratio="120",
        loan_amount="10",
    ) == [
        "loan_amount_range",
        "ltv_ratio",
        "dti_ratio",
        "credit_score",
        "property_type",
        "occupancy_status",
        "loan_purpose",
        "missing_purchase_price",
        "missing_appraisal",
        "note_rate_range",
    ]


def test_a_zero_loan_amount_is_present_and_fails_the_range_not_validation() -> None:
    assert failed(loan_amount="0") == ["loan_amount_range"]


def test_missing_required_fields_are_listed_in_required_field_order() -> None:
    (exception,) = evaluated(
        property_type=None, credit_score=None, seller_loan_number=None
    ).exceptions
    assert exception == LoanException(
        exception_type="missing_field",
        category="data_quality",
        severity="hard",
        message="Missing required fields: seller_loan_number, credit_score, property_type",
        rejection_criteria="notebook.missing_required_fields",
    )


def test_a_blank_value_counts_as_missing() -> None:
    (exception,) = evaluated(property_type="  ").exceptions
    assert exception.message == "Missing required fields: property_type"


def test_invalid_fields_are_listed_in_loan_field_order() -> None:
    (exception,) = evaluated(
        appraisal_value="n/a",
        loan_amount="1_000",
        dti_ratio="abc",
        invalid=("loan_amount", "dti_ratio", "appraisal_value"),
    ).exceptions
    assert exception == LoanException(
        exception_type="invalid_field",
        category="data_quality",
        severity="hard",
        message="Invalid values for fields: loan_amount, dti_ratio, appraisal_value",
        rejection_criteria="notebook.invalid_field_format",
    )


def test_an_invalid_optional_field_is_a_validation_exception() -> None:
    assert failed(purchase_price="TBD", invalid=("purchase_price",)) == ["invalid_field"]


def test_numeric_text_that_does_not_parse_is_invalid_even_when_not_flagged() -> None:
    assert failed(ltv_ratio="eighty") == ["invalid_field"]


def test_a_duplicate_names_the_row_and_file_of_its_first_occurrence() -> None:
    (exception,) = evaluated(duplicate_of=RowRef(source_file="a b.csv", row=11)).exceptions
    assert exception == LoanException(
        exception_type="duplicate_loan",
        category="data_quality",
        severity="hard",
        message="Duplicate seller loan number (first seen at row 11 of a b.csv)",
        rejection_criteria="notebook.duplicate_loan_number",
    )


def test_validation_exceptions_come_once_each_in_spec_order() -> None:
    assert failed(
        property_type=None,
        note_rate=None,
        loan_amount="x",
        credit_score="720.5",
        invalid=("loan_amount", "credit_score"),
        duplicate_of=RowRef(source_file="tape.csv", row=1),
    ) == ["missing_field", "invalid_field", "duplicate_loan"]


def test_any_validation_exception_skips_eligibility() -> None:
    evaluation = evaluated(
        ltv_ratio="120", dti_ratio=None, duplicate_of=RowRef(source_file="t.csv", row=2)
    )
    assert [e.exception_type for e in evaluation.exceptions] == ["duplicate_loan"]
    assert evaluation.quality.rules_passed == 0


def test_missing_optional_fields_are_not_validation_exceptions() -> None:
    assert failed(dti_ratio=None, occupancy_status=None, loan_purpose=None) == [
        "dti_ratio",
        "occupancy_status",
        "loan_purpose",
    ]


def test_quality_of_a_complete_eligible_loan_is_one_hundred() -> None:
    quality = evaluated().quality
    assert (quality.present_fields, quality.numeric_present, quality.numeric_valid) == (11, 7, 7)
    assert quality.unique
    assert quality.dq_score == Decimal("100.00")


def test_dq_score_of_a_loan_missing_its_dti_is_ninety_five_point_two_three() -> None:
    # 100 * (10/11 + 6/6 + 1 + 9/10) / 4 = 95.2272...
    quality = evaluated(dti_ratio=None).quality
    assert (quality.present_fields, quality.numeric_present, quality.rules_passed) == (10, 6, 9)
    assert quality.dq_score == Decimal("95.23")


def test_dq_score_of_a_loan_with_an_invalid_amount_counts_no_rules_passed() -> None:
    # 100 * (11/11 + 6/7 + 1 + 0) / 4 = 71.4285...
    quality = evaluated(loan_amount="abc", invalid=("loan_amount",)).quality
    assert (quality.numeric_present, quality.numeric_valid, quality.rules_passed) == (7, 6, 0)
    assert quality.dq_score == Decimal("71.43")


def test_a_duplicate_has_uniqueness_zero() -> None:
    # 100 * (1 + 1 + 0 + 0) / 4: a duplicate also skips eligibility.
    quality = evaluated(duplicate_of=RowRef(source_file="tape.csv", row=1)).quality
    assert not quality.unique
    assert quality.dq_score == Decimal("50.00")


def test_validity_is_one_when_no_numeric_field_is_present() -> None:
    numeric = ("loan_amount", "note_rate", "ltv_ratio", "dti_ratio", "credit_score")
    quality = evaluated(
        **dict.fromkeys((*numeric, "purchase_price", "appraisal_value"), None)
    ).quality
    # 100 * (4/11 + 1 + 1 + 0) / 4 = 59.0909...
    assert (quality.numeric_present, quality.numeric_valid) == (0, 0)
    assert quality.dq_score == Decimal("59.09")


def test_dq_score_always_has_exactly_two_decimals() -> None:
    assert str(evaluated(ltv_ratio="98").quality.dq_score) == "97.50"
