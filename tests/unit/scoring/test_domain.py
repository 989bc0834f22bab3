"""Scoring's pure rules: model inputs, score, risk category, top factors, routing, policies."""

from decimal import Decimal

import pytest

from contracts.scoring import FEATURES, ScoringFeatures
from services.scoring.domain import (
    PolicyError,
    Prediction,
    RoutingPolicy,
    assess,
    features_of,
    load_policy,
    parse_policy,
    probability_text,
    risk_category,
    route,
    score_of,
    shown_value,
    top_factors,
)
from tests.factories import loan_record

POLICY = RoutingPolicy(
    version="test.1",
    auto_approve_min=850,
    auto_decline_max=600,
    low_min_score=900,
    medium_min_score=750,
    loan_amount_above=Decimal("3000000"),
    loan_purposes=frozenset({"cash_out_refinance"}),
    property_types=frozenset({"2-4 unit"}),
)
PLAIN = ScoringFeatures(loan_amount="250000", loan_purpose="purchase", property_type="sfr")


def policy_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "version": "9.9.9",
        "auto_approve_min": 850,
        "auto_decline_max": 600,
        "risk_categories": {"low_min_score": 900, "medium_min_score": 750},
        "review_triggers": {
            "loan_amount_above": "3000000",
            "loan_purposes": [" Cash_Out_Refinance "],
            "property_types": ["2-4 Unit"],
        },
    }
    data.update(overrides)
    return data


def test_features_are_canonical_numbers_and_lower_cased_categories() -> None:
    loan = loan_record(property_type=" Condo ", occupancy_status="SECOND HOME")
    features = features_of(loan)
    assert features == ScoringFeatures(
        credit_score="720",
        ltv_ratio="80.00",
        dti_ratio="35.0",
        note_rate="7.786",
        loan_amount="250000",
        appraisal_to_price="1.0080",
        property_type="condo",
        occupancy_status="second home",
        loan_purpose="purchase",
    )


def test_invalid_and_missing_values_are_missing_model_inputs() -> None:
    loan = loan_record(
        credit_score="abc", dti_ratio=None, loan_purpose="  ", invalid=["credit_score"]
    )
    features = features_of(loan)
    assert (features.credit_score, features.dti_ratio, features.loan_purpose) == (None, None, None)


def test_appraisal_ratio_is_missing_without_a_positive_purchase_price() -> None:
    assert features_of(loan_record(purchase_price="0")).appraisal_to_price is None
    assert features_of(loan_record(appraisal_value=None)).appraisal_to_price is None


def test_probability_is_six_decimals_and_the_score_its_complement_in_thousandths() -> None:
    assert probability_text(0.0834124999) == "0.083412"
    assert probability_text(1.0) == "1.000000"
    assert score_of("0.083412") == 917
    assert score_of("0.000000") == 1000
    assert score_of("1.000000") == 0
    # 1000 x (1 - 0.0845) = 915.5 rounds half to even
    assert score_of("0.084500") == 916


@pytest.mark.parametrize("probability", [-0.1, 1.5, float("nan"), float("inf")])
def test_a_probability_outside_zero_one_is_refused(probability: float) -> None:
    with pytest.raises(ValueError):
        probability_text(probability)


@pytest.mark.parametrize(
    ("score", "category"),
    [(1000, "low"), (900, "low"), (899, "medium"), (750, "medium"), (749, "high")],
)
def test_risk_category_follows_the_policy_bands(score: int, category: str) -> None:
    assert risk_category(score, POLICY) == category


def test_rejected_loans_auto_decline_for_their_hard_exception_whatever_the_score() -> None:
    routing = route("rejected", 990, PLAIN, POLICY)
    assert (routing.decision, routing.reason, routing.triggers) == (
        "auto_decline",
        "hard_exception",
        (),
    )
    assert routing.policy_version == "test.1"


@pytest.mark.parametrize(
    ("score", "decision", "reason"),
    [
        (850, "auto_approve", "score_at_or_above_auto_approve"),
        (849, "human_review", "borderline_score"),
        (601, "human_review", "borderline_score"),
        (600, "auto_decline", "score_at_or_below_auto_decline"),
    ],
)
def test_other_loans_route_by_the_thresholds_inclusive(
    score: int, decision: str, reason: str
) -> None:
    for disposition in ("to_purchase", "projected"):
        routing = route(disposition, score, PLAIN, POLICY)
        assert (routing.decision, routing.reason) == (decision, reason)


def test_review_triggers_send_a_loan_to_a_person_even_with_a_safe_score() -> None:
    big = PLAIN.model_copy(update={"loan_amount": "3000000.01"})
    at_limit = PLAIN.model_copy(update={"loan_amount": "3000000"})
    listed = PLAIN.model_copy(
        update={"loan_purpose": "cash_out_refinance", "property_type": "2-4 unit"}
    )
    assert route("to_purchase", 990, big, POLICY).reason == "loan_amount_above_limit"
    assert route("to_purchase", 990, at_limit, POLICY).decision == "auto_approve"
    routing = route("to_purchase", 100, listed, POLICY)
    assert routing.decision == "human_review"
    assert routing.reason == "loan_purpose_listed"
    assert routing.triggers == ("loan_purpose_listed", "property_type_listed")


def contributions(**values: float) -> tuple[float, ...]:
    return tuple(values.get(name, 0.0) for name in FEATURES)


def test_top_factors_are_the_five_strongest_each_way_strongest_first() -> None:
    values = contributions(
        credit_score=-0.9,
        ltv_ratio=0.7,
        dti_ratio=0.2,
        note_rate=-0.1,
        loan_amount=0.05,
        appraisal_to_price=-0.3,
        property_type=0.4,
        occupancy_status=-0.6,
        loan_purpose=0.3,
    )
    features = features_of(loan_record())
    safer, riskier = top_factors(features, values)
    assert [f.feature for f in safer] == [
        "credit_score",
        "occupancy_status",
        "appraisal_to_price",
        "note_rate",
    ]
    assert [f.feature for f in riskier] == [
        "ltv_ratio",
        "property_type",
        "loan_purpose",
        "dti_ratio",
        "loan_amount",
    ]
    assert safer[0].contribution == "-0.900000"
    assert safer[0].value == "720"
    assert safer[0].description == "Credit score of 720 lowers the estimated default risk"
    assert riskier[0].value == "80.00%"
    assert riskier[0].description == "LTV ratio of 80.00% raises the estimated default risk"


def test_more_than_five_contributions_one_way_keep_the_five_strongest() -> None:
    values = contributions(**{name: 0.1 * (index + 1) for index, name in enumerate(FEATURES)})
    safer, riskier = top_factors(PLAIN, values)
    assert safer == ()
    assert [f.feature for f in riskier] == list(reversed(FEATURES))[:5]


def test_zero_contributions_are_no_factor_and_a_missing_value_says_so() -> None:
    safer, riskier = top_factors(PLAIN, contributions(dti_ratio=0.4, note_rate=0.0000001))
    assert safer == ()
    assert [(f.feature, f.value) for f in riskier] == [("dti_ratio", "missing")]
    assert riskier[0].description == "DTI ratio missing (imputed) raises the estimated default risk"


def test_top_factors_need_one_contribution_per_feature() -> None:
    with pytest.raises(ValueError):
        top_factors(PLAIN, (0.1, 0.2))


def test_values_are_shown_as_a_person_reads_them() -> None:
    assert shown_value("loan_amount", "1250000.5") == "$1,250,000.5"
    assert shown_value("note_rate", "6.875") == "6.875%"
    assert shown_value("property_type", "condo") == "condo"
    assert shown_value("credit_score", None) == "missing"


def test_the_same_prediction_gives_the_same_assessment() -> None:
    prediction = Prediction(0.1234567891, contributions(credit_score=-0.51234567, ltv_ratio=0.2))
    first = assess("to_purchase", PLAIN, prediction, POLICY)
    second = assess("to_purchase", PLAIN, prediction, POLICY)
    assert first == second
    assert (first.score, first.probability_default, first.risk_category) == (
        877,
        "0.123457",
        "medium",
    )
    assert first.routing.decision == "auto_approve"


def test_the_shipped_policy_loads_and_unknown_versions_are_refused() -> None:
    policy = load_policy()
    assert policy.auto_decline_max < policy.auto_approve_min
    assert policy.version == "2026.12.1"
    with pytest.raises(PolicyError):
        load_policy("../etc/passwd")
    with pytest.raises(PolicyError):
        load_policy("1.0.0")


def test_a_policy_normalises_its_listed_categories() -> None:
    policy = parse_policy(policy_data())
    assert policy.loan_purposes == {"cash_out_refinance"}
    assert policy.property_types == {"2-4 unit"}
    assert policy.loan_amount_above == Decimal("3000000")


@pytest.mark.parametrize(
    "overrides",
    [
        {"auto_approve_min": 600},
        {"auto_decline_max": 1001},
        {"auto_approve_min": "850"},
        {"risk_categories": {"low_min_score": 700, "medium_min_score": 800}},
        {"review_triggers": {"loan_amount_above": 3000000.5}},
        {"review_triggers": {"loan_purposes": "purchase"}},
        {"version": None, "auto_approve_min": None},
    ],
)
def test_a_malformed_policy_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(PolicyError):
        parse_policy(policy_data(**overrides))
