"""A run's data-quality means from per-batch sums agree with the rules service, exactly."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.loans import QualityCounts
from services.gateway.runs.quality import QualitySums, run_quality, validity_420
from services.rules.domain import run_quality as rules_run_quality


@st.composite
def quality_counts(draw: st.DrawFn) -> QualityCounts:
    numeric_present = draw(st.integers(0, 7))
    return QualityCounts(
        present_fields=draw(st.integers(numeric_present, 11)),
        numeric_present=numeric_present,
        numeric_valid=draw(st.integers(0, numeric_present)),
        unique=draw(st.booleans()),
        rules_passed=draw(st.integers(0, 10)),
        dq_score=Decimal(draw(st.integers(0, 10000))) / 100,
    )


def sums_of(counts: list[QualityCounts]) -> QualitySums:
    return QualitySums(
        loans=len(counts),
        present_fields=sum(c.present_fields for c in counts),
        validity_420=sum(validity_420(c.numeric_present, c.numeric_valid) for c in counts),
        unique_loans=sum(c.unique for c in counts),
        rules_passed=sum(c.rules_passed for c in counts),
        dq_score=sum((c.dq_score for c in counts), Decimal(0)),
    )


@settings(deadline=None)  # a loaded CI machine must not turn a slow example into a failure
@given(st.lists(quality_counts(), min_size=1, max_size=60))
def test_means_from_sums_equal_the_rules_services_run_quality(counts: list[QualityCounts]) -> None:
    mine = run_quality(sums_of(counts), 10)
    theirs = rules_run_quality(counts, rules_total=10)
    assert mine.completeness == theirs.completeness
    assert mine.validity == theirs.validity
    assert mine.uniqueness == theirs.uniqueness
    assert mine.conformance == theirs.conformance
    assert mine.dq_score == theirs.dq_score


def test_validity_is_one_when_no_numeric_field_is_present() -> None:
    assert validity_420(0, 0) == 420
    assert validity_420(7, 3) == 180


def test_means_round_half_to_even() -> None:
    # completeness 0.00005 exactly is a tie at 4 decimals: it rounds to the even 0.0000.
    sums = QualitySums(loans=20_000, present_fields=11, dq_score=Decimal("0.50"))
    means = run_quality(sums, 10)
    assert means.completeness == Decimal("0.0000")
    assert str(run_quality(QualitySums(loans=2, dq_score=Decimal("0.05")), 10).dq_score) == "0.02"


def test_a_run_without_loans_has_zero_means() -> None:
    means = run_quality(QualitySums(), 10)
    assert (means.completeness, means.dq_score) == (Decimal("0.0000"), Decimal("0.00"))
