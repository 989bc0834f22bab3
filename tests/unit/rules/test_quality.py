from decimal import Decimal

from contracts.loans import QualityCounts
from services.rules.domain import RunQuality, evaluate, load_rule_set, run_quality
from tests.factories import loan_record, quality_counts

RULES = load_rule_set()


def test_run_means_of_a_clean_run_are_all_one_and_one_hundred() -> None:
    assert run_quality([quality_counts(), quality_counts()]) == RunQuality(
        loans=2,
        completeness=Decimal("1.0000"),
        validity=Decimal("1.0000"),
        uniqueness=Decimal("1.0000"),
        conformance=Decimal("1.0000"),
        dq_score=Decimal("100.00"),
    )


def test_run_dq_score_is_the_mean_of_the_loans_rounded_dq_scores() -> None:
    # SPEC §3.4 "the mean of ... dq_score": the loans' scores as written (100.00 and 95.23),
    # so (100.00 + 95.23) / 2 = 97.615 -> 97.62; the unrounded scores would give 97.6136 -> 97.61.
    clean = evaluate(loan_record(), RULES).quality
    no_dti = evaluate(loan_record(dti_ratio=None), RULES).quality
    assert no_dti.dq_score == Decimal("95.23")
    assert run_quality([clean, no_dti]).dq_score == Decimal("97.62")


def test_run_dimension_means_are_exact_then_rounded_half_even_to_four_decimals() -> None:
    # uniqueness 1/32 = 0.03125 -> 0.0312 and 3/32 = 0.09375 -> 0.0938 (ties to even)
    one = [quality_counts(unique=True)] + [quality_counts(unique=False)] * 31
    three = [quality_counts(unique=True)] * 3 + [quality_counts(unique=False)] * 29
    assert run_quality(one).uniqueness == Decimal("0.0312")
    assert run_quality(three).uniqueness == Decimal("0.0938")


def test_run_dq_score_mean_rounds_half_even_to_two_decimals() -> None:
    def scores(*values: str) -> list[QualityCounts]:
        return [quality_counts(dq_score=Decimal(value)) for value in values]

    assert run_quality(scores("93.18", "93.19")).dq_score == Decimal("93.18")
    assert run_quality(scores("93.17", "93.18")).dq_score == Decimal("93.18")


def test_run_dimensions_follow_each_loans_counts() -> None:
    counts = [
        quality_counts(present_fields=10, numeric_present=6, numeric_valid=3, rules_passed=5),
        quality_counts(present_fields=0, numeric_present=0, numeric_valid=0, rules_passed=0),
    ]
    quality = run_quality(counts)
    # completeness (10/11 + 0) / 2; validity (3/6 + 1) / 2; conformance (5/10 + 0) / 2
    assert (quality.completeness, quality.validity, quality.conformance) == (
        Decimal("0.4545"),
        Decimal("0.7500"),
        Decimal("0.2500"),
    )


def test_run_quality_reads_its_loans_once_so_a_generator_will_do() -> None:
    quality = run_quality(quality_counts() for _ in range(3))
    assert quality.loans == 3


def test_run_quality_of_no_loans_is_zero() -> None:
    assert run_quality([]) == RunQuality(
        loans=0,
        completeness=Decimal("0.0000"),
        validity=Decimal("0.0000"),
        uniqueness=Decimal("0.0000"),
        conformance=Decimal("0.0000"),
        dq_score=Decimal("0.00"),
    )


def test_conformance_is_measured_against_the_rule_count_given() -> None:
    assert run_quality([quality_counts(rules_passed=5)], rules_total=20).conformance == Decimal(
        "0.2500"
    )
