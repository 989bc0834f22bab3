"""Run data-quality means (SPEC §3.4): the one implementation, from exact integer sums.

Rules, the gateway's summary and its `/dq` endpoints all compute a run's means here. The sums are
kept per batch by the projector so a million-loan run's quality is a handful of additions:
completeness as present fields, validity scaled by 420 (every n/k with k ≤ 7 is a whole number of
420ths), uniqueness and conformance as counts, dq_score as an exact Decimal sum. Conformance is
divided by the eligibility rule count of the rule-set version the loans were evaluated with
(`contracts.rule_sets.eligibility_rule_count`), never by a constant.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from contracts.loans import LOAN_FIELDS, QualityCounts

VALIDITY_SCALE = 420


@dataclass(frozen=True, slots=True)
class QualitySums:
    """Sums over a set of loans of the counts behind each quality dimension."""

    loans: int = 0
    present_fields: int = 0
    validity_420: int = 0
    unique_loans: int = 0
    rules_passed: int = 0
    dq_score: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class RunQualityMeans:
    """Mean of each dimension (4 decimals) and of the loans' dq_score (2 decimals)."""

    completeness: Decimal
    validity: Decimal
    uniqueness: Decimal
    conformance: Decimal
    dq_score: Decimal


def validity_420(numeric_present: int, numeric_valid: int) -> int:
    """A loan's validity in 420ths: valid / present numeric fields, 1 when none is present."""
    if numeric_present == 0:
        return VALIDITY_SCALE
    return VALIDITY_SCALE * numeric_valid // numeric_present


def sums_of(counts: Iterable[QualityCounts]) -> QualitySums:
    """The sums of a set of loans' quality counts."""
    loans = present = validity = unique = passed = 0
    score = Decimal(0)
    for count in counts:
        loans += 1
        present += count.present_fields
        validity += validity_420(count.numeric_present, count.numeric_valid)
        unique += int(count.unique)
        passed += count.rules_passed
        score += count.dq_score
    return QualitySums(loans, present, validity, unique, passed, score)


def half_even(value: Fraction, places: int) -> Decimal:
    """`value` rounded once, half to even, to `places` decimals (SPEC §3.4)."""
    # round() of a Fraction is exact half-even; the Decimal is built from text so nothing else
    # rounds.
    return Decimal(f"{round(value * 10**places)}E-{places}")


def run_quality(sums: QualitySums, rules_total: int) -> RunQualityMeans:
    """The run's quality means; all zero for a run without loans."""
    loans = max(sums.loans, 1)
    conformance = Fraction(sums.rules_passed, loans * rules_total) if rules_total else Fraction(0)
    return RunQualityMeans(
        completeness=half_even(Fraction(sums.present_fields, loans * len(LOAN_FIELDS)), 4),
        validity=half_even(Fraction(sums.validity_420, loans * VALIDITY_SCALE), 4),
        uniqueness=half_even(Fraction(sums.unique_loans, loans), 4),
        conformance=half_even(conformance, 4),
        dq_score=half_even(Fraction(sums.dq_score) / loans, 2),
    )
