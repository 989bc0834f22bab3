"""A run's data-quality means from per-batch integer sums (SPEC §3.4), exactly.

The projector keeps sums per batch so a million-loan run's quality is a handful of additions:
completeness as present fields, validity scaled by 420 (every n/k with k ≤ 7 is a whole number of
420ths), uniqueness and conformance as counts, dq_score as an exact Decimal sum.
"""

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from contracts.loans import LOAN_FIELDS

VALIDITY_SCALE = 420
ELIGIBILITY_RULES = 10


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


def _half_even(value: Fraction, places: int) -> Decimal:
    # SPEC §3.4: computed exactly, rounded once half to even; round() of a Fraction does that.
    return Decimal(f"{round(value * 10**places)}E-{places}")


def run_quality(sums: QualitySums, rules_total: int = ELIGIBILITY_RULES) -> RunQualityMeans:
    """The run's quality means; all zero for a run without loans."""
    loans = max(sums.loans, 1)
    return RunQualityMeans(
        completeness=_half_even(Fraction(sums.present_fields, loans * len(LOAN_FIELDS)), 4),
        validity=_half_even(Fraction(sums.validity_420, loans * VALIDITY_SCALE), 4),
        uniqueness=_half_even(Fraction(sums.unique_loans, loans), 4),
        conformance=_half_even(Fraction(sums.rules_passed, loans * rules_total), 4),
        dq_score=_half_even(Fraction(sums.dq_score) / loans, 2),
    )
