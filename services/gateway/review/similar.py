"""The most similar decided loans of a case (SPEC §8), pure: nearest by the scored model inputs.

Distance is Euclidean over the numeric inputs, each divided by a scale that makes one unit a
meaningful difference (100 points of credit score, 10 points of LTV or DTI, one point of note rate,
a doubling of the amount), plus 1 for each categorical input that differs. A missing input on
either side adds 1, as if it differed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TypeVar

SCALES: Mapping[str, float] = {
    "credit_score": 100.0,
    "ltv_ratio": 10.0,
    "dti_ratio": 10.0,
    "note_rate": 1.0,
    "appraisal_to_price": 0.1,
}
CATEGORIES: tuple[str, ...] = ("property_type", "occupancy_status", "loan_purpose")
T = TypeVar("T")


def _number(text: object) -> float | None:
    if text is None:
        return None
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return None
    return float(value) if value.is_finite() else None


def distance(a: Mapping[str, object], b: Mapping[str, object]) -> float:
    """How far apart two loans' model inputs are (0 for the same inputs)."""
    total = 0.0
    for name, scale in SCALES.items():
        x, y = _number(a.get(name)), _number(b.get(name))
        total += 1.0 if x is None or y is None else ((x - y) / scale) ** 2
    x, y = _number(a.get("loan_amount")), _number(b.get("loan_amount"))
    if x is None or y is None or x <= 0 or y <= 0:
        total += 1.0
    else:
        total += math.log2(x / y) ** 2
    total += sum(1.0 for name in CATEGORIES if a.get(name) is None or a.get(name) != b.get(name))
    return math.sqrt(total)


def nearest(
    features: Mapping[str, object], candidates: Iterable[tuple[T, Mapping[str, object]]], k: int
) -> list[tuple[T, float]]:
    """The `k` candidates nearest to `features`, nearest first (ties in candidate order)."""
    scored = [(item, distance(features, other)) for item, other in candidates]
    return sorted(scored, key=lambda pair: pair[1])[:k]
