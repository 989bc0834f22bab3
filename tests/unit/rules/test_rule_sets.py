import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from services.rules.domain import (
    CURRENT_VERSION,
    RULE_SETS,
    Rule,
    RuleSetError,
    evaluate,
    load_rule_set,
    parse_rule_set,
)
from tests.factories import loan_record

SHIPPED: dict[str, Any] = json.loads(
    (RULE_SETS / f"{CURRENT_VERSION}.json").read_text(encoding="utf-8")
)

SPEC_TABLE = [
    ("loan_amount_range", "credit", "hard", "notebook.loan_amount_out_of_range",
     "Loan amount must be between $50,000 and $5,000,000"),
    ("ltv_ratio", "credit", "hard", "notebook.ltv_exceeds_maximum",
     "LTV ratio exceeds maximum of 97%"),
    ("dti_ratio", "credit", "hard", "notebook.dti_exceeds_maximum",
     "DTI ratio exceeds maximum of 50%"),
    ("credit_score", "credit", "hard", "notebook.credit_score_below_minimum",
     "Credit score below minimum of 620"),
    ("property_type", "collateral", "hard", "notebook.ineligible_property_type",
     "Ineligible property type"),
    ("occupancy_status", "collateral", "hard", "notebook.ineligible_occupancy",
     "Ineligible occupancy status"),
    ("loan_purpose", "compliance", "hard", "notebook.ineligible_loan_purpose",
     "Ineligible loan purpose"),
    ("missing_purchase_price", "data_quality", "soft", "notebook.purchase_price_mismatch",
     "Purchase price is missing or zero"),
    ("missing_appraisal", "data_quality", "soft", "notebook.appraisal_missing",
     "Appraisal value is missing or zero"),
    ("note_rate_range", "pricing", "soft", "notebook.note_rate_out_of_range",
     "Note rate outside acceptable range (1%-15%)"),
]  # fmt: skip


def variant(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SHIPPED)
    data.update(changes)
    return data


def with_rule(index: int, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SHIPPED)
    data["rules"][index].update(changes)
    return data


def test_the_default_rule_set_is_the_current_version() -> None:
    assert load_rule_set().version == CURRENT_VERSION
    assert load_rule_set(CURRENT_VERSION) == load_rule_set()


def test_the_shipped_rules_raise_exactly_the_spec_table() -> None:
    failures = [
        (r.failure.exception_type, r.failure.category, r.failure.severity,
         r.failure.rejection_criteria, r.failure.message)
        for r in load_rule_set().rules
    ]  # fmt: skip
    assert failures == SPEC_TABLE


def test_required_fields_are_the_six_of_the_spec_in_order() -> None:
    assert load_rule_set().required_fields == (
        "seller_loan_number",
        "loan_amount",
        "note_rate",
        "ltv_ratio",
        "credit_score",
        "property_type",
    )


@pytest.mark.parametrize("version", ["1999.1.1", "../2026.11.1", "2026.11.1.json", ""])
def test_an_unknown_version_is_refused(version: str) -> None:
    with pytest.raises(RuleSetError, match="unknown rule set version"):
        load_rule_set(version)


def test_a_rule_set_variant_changes_outcomes_without_code() -> None:
    looser = parse_rule_set(variant(version="test.1") | {"rules": [
        rule | {"maximum": "55"} if rule["name"] == "dti_ratio" else rule
        for rule in SHIPPED["rules"]
    ]})  # fmt: skip
    loan = loan_record(dti_ratio="52")
    assert [e.exception_type for e in evaluate(loan, load_rule_set()).exceptions] == ["dti_ratio"]
    assert evaluate(loan, looser).exceptions == ()


def test_bounds_are_exact_decimals() -> None:
    ltv = load_rule_set().rules[1]
    assert (ltv.field, ltv.check, ltv.maximum, ltv.default) == (
        "ltv_ratio",
        "range",
        Decimal("97.0"),
        "100",
    )


def test_a_range_with_one_bound_is_open_on_the_other_side_and_greater_than_needs_its_minimum() -> (
    None
):
    outcome = load_rule_set().rules[0].outcome
    at_most = Rule(outcome, "dti_ratio", "range", maximum=Decimal("50"))
    at_least = Rule(outcome, "credit_score", "range", minimum=Decimal("620"))
    unbounded = Rule(outcome, "loan_amount", "greater_than")
    assert [at_most.passes(text) for text in ("-1E+9", "50", "50.01")] == [True, True, False]
    assert [at_least.passes(text) for text in ("619", "620", "1E+9")] == [False, True, True]
    assert [unbounded.passes(text) for text in ("0", "1E+9")] == [False, False]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (with_rule(0, check="between"), "cannot apply"),
        (with_rule(0, field="property_type"), "cannot apply"),
        (with_rule(4, field="no_such_field"), "cannot apply"),
        (with_rule(0, minimum=None, maximum=None), "needs its bounds"),
        (with_rule(7, minimum=None), "needs its bounds"),
        (with_rule(4, allowed=[]), "needs allowed values"),
        (with_rule(0, default="zero"), "is not a number"),
        (with_rule(0, minimum="fifty"), "not a number written as text"),
        (with_rule(0, minimum=50000), "not a number written as text"),
        (with_rule(1, maximum="NaN"), "not a number written as text"),
        (with_rule(2, default=100), "is not a number"),
        (with_rule(0, category="finance"), "unknown category"),
        (with_rule(0, severity="fatal"), "unknown category or severity"),
        (with_rule(1, name="loan_amount_range"), "unique"),
        (variant(validation=SHIPPED["validation"][:2]), "validation must define"),
        (variant(required_fields=["loan_amount", "borrower"]), "required fields"),
        (variant(rules=None), "malformed"),
    ],
)
def test_a_malformed_rule_set_is_refused_with_its_reason(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(RuleSetError, match=reason):
        parse_rule_set(data)
