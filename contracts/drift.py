"""Feature drift of scored loans against the model's training data: PSI and KS per feature.

Pure functions over the model card's reference (`ModelLoaded`) and the model inputs every
`LoanScored` carries, so the scoring service (its Prometheus gauges) and the gateway
(`GET /ml/drift?run_id=`) compute the same numbers from the log. Numeric features are binned at
the training deciles plus one bin for missing values; a categorical feature has one bin per
known category plus `other` (unknown values and missing ones). KS is taken over those bins: the
largest gap between the two cumulative distributions at a bin edge.
"""

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from math import log

from pydantic import Field

from contracts.base import Contract
from contracts.scoring import ModelLoaded, ScoringFeatures

PSI_DRIFT_THRESHOLD = 0.2
# An empty bin would make PSI infinite; its share is floored here (the usual convention).
SHARE_FLOOR = 1e-4
_SIX_PLACES = Decimal("0.000001")

Counts = dict[str, list[int]]


class FeatureDrift(Contract):
    """One feature's drift over a set of loans against the training data."""

    feature: str
    psi: str = Field(description="Population stability index, 6 decimals.")
    ks: str = Field(description="Largest gap between the binned CDFs, 6 decimals.")
    loans: int
    drifted: bool = Field(description=f"psi > {PSI_DRIFT_THRESHOLD}.")


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index: sum of (a - e) * ln(a / e) over bins (shares, floored)."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e_share, a_share = max(e, SHARE_FLOOR), max(a, SHARE_FLOOR)
        total += (a_share - e_share) * log(a_share / e_share)
    return total


def ks(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Kolmogorov-Smirnov statistic of two binned distributions: max |CDF_e - CDF_a|."""
    gap = cumulative_e = cumulative_a = 0.0
    for e, a in zip(expected, actual, strict=True):
        cumulative_e += e
        cumulative_a += a
        gap = max(gap, abs(cumulative_e - cumulative_a))
    return gap


def shares(counts: Sequence[int]) -> list[float]:
    """Counts as shares of their total (all zero when there are none)."""
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


def expected_shares(reference: ModelLoaded) -> dict[str, list[float]]:
    """Each feature's training shares per bin, in the order `bin_counts` counts them."""
    expected = {
        numeric.feature: [float(s) for s in (*numeric.shares, numeric.missing_share)]
        for numeric in reference.numeric_reference
    }
    for categorical in reference.categorical_reference:
        expected[categorical.feature] = [float(s) for s in categorical.shares]
    return expected


def empty_counts(reference: ModelLoaded) -> Counts:
    """Zero counts for every feature's bins."""
    return {feature: [0] * len(bins) for feature, bins in expected_shares(reference).items()}


def bin_counts(reference: ModelLoaded, loans: Iterable[ScoringFeatures]) -> Counts:
    """How many loans fall in each bin of each feature."""
    counts = empty_counts(reference)
    edges = {n.feature: [float(e) for e in n.edges] for n in reference.numeric_reference}
    categories = {c.feature: c.categories for c in reference.categorical_reference}
    for features in loans:
        for feature, feature_edges in edges.items():
            text = getattr(features, feature)
            index = (
                len(feature_edges) + 1 if text is None else bisect_left(feature_edges, float(text))
            )
            counts[feature][index] += 1
        for feature, known in categories.items():
            value = getattr(features, feature)
            counts[feature][known.index(value) if value in known else len(known)] += 1
    return counts


def add_counts(total: Counts, more: Mapping[str, Sequence[int]]) -> Counts:
    """Two sets of bin counts added (a run's batches folded together)."""
    return {
        feature: [a + b for a, b in zip(bins, more[feature], strict=True)]
        for feature, bins in total.items()
    }


def drift(reference: ModelLoaded, counts: Mapping[str, Sequence[int]]) -> tuple[FeatureDrift, ...]:
    """PSI and KS of every feature's counted loans against the training shares."""
    found = []
    for feature, expected in expected_shares(reference).items():
        actual = shares(counts[feature])
        index = psi(expected, actual)
        found.append(
            FeatureDrift(
                feature=feature,
                psi=_six_places(index),
                ks=_six_places(ks(expected, actual)),
                loans=sum(counts[feature]),
                drifted=index > PSI_DRIFT_THRESHOLD,
            )
        )
    return tuple(found)


def _six_places(value: float) -> str:
    """A float as fixed 6-decimal text (repr first, so the same float gives the same text)."""
    text = str(Decimal(repr(value)).quantize(_SIX_PLACES, rounding=ROUND_HALF_EVEN))
    return "0.000000" if text == "-0.000000" else text
