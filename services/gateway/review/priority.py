"""A review case's priority (SPEC §8), pure: closeness to the thresholds, amount, age, releases.

    points = 50 x closeness + 30 x size + 20 x age - 10 x releases, clamped to 0..100

- closeness = 1 - d / half_band, floored at 0, where d is the score's distance to the nearer
  routing threshold (`auto_approve_min`, `auto_decline_max`) and half_band half the distance
  between them: a loan that just missed a threshold is the one a person can settle fastest, and
  the one where the model is least sure which side it belongs to.
- size = loan_amount / amount_cap, capped at 1 (missing amount: 0): more money at stake first.
- age = hours since the loan was scored / SLA hours, capped at 1: older cases rise.
- each release lowers the case one step (10 points) so a case nobody could finish does not block
  the head of the queue.

Levels: critical at 75 or more, high at 50, medium at 25, else low.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from contracts.reviews import Priority

CLOSENESS_WEIGHT = Decimal(50)
SIZE_WEIGHT = Decimal(30)
AGE_WEIGHT = Decimal(20)
RELEASE_PENALTY = 10
LEVELS: tuple[tuple[int, Priority], ...] = ((75, "critical"), (50, "high"), (25, "medium"))


@dataclass(frozen=True, slots=True)
class PriorityPolicy:
    """The routing thresholds the scoring policy uses, the amount that counts as large, the SLA."""

    auto_approve_min: int = 850
    auto_decline_max: int = 600
    amount_cap: Decimal = Decimal(3_000_000)
    sla_hours: Decimal = Decimal(8)


def _unit(value: Decimal) -> Decimal:
    return min(Decimal(1), max(Decimal(0), value))


def closeness(score: int, policy: PriorityPolicy) -> Decimal:
    """1 on a threshold, 0 half a band away from both (or further)."""
    half_band = Decimal(policy.auto_approve_min - policy.auto_decline_max) / 2
    if half_band <= 0:
        return Decimal(0)
    distance = min(abs(score - policy.auto_approve_min), abs(score - policy.auto_decline_max))
    return _unit(1 - Decimal(distance) / half_band)


def priority_points(
    score: int,
    loan_amount: Decimal | None,
    scored_at: datetime,
    now: datetime,
    releases: int,
    policy: PriorityPolicy,
) -> int:
    """The case's priority points (0-100) at `now`."""
    size = _unit(loan_amount / policy.amount_cap) if loan_amount is not None else Decimal(0)
    age_hours = Decimal((now - scored_at).total_seconds()) / 3600
    age = _unit(age_hours / policy.sla_hours) if policy.sla_hours > 0 else Decimal(1)
    raw = CLOSENESS_WEIGHT * closeness(score, policy) + SIZE_WEIGHT * size + AGE_WEIGHT * age
    points = int(raw.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) - RELEASE_PENALTY * releases
    return max(0, min(100, points))


def level(points: int) -> Priority:
    """The priority level of a number of points."""
    for floor, name in LEVELS:
        if points >= floor:
            return name
    return "low"


def parse_amount(text: str | None) -> Decimal | None:
    """A loan amount's exact text as a Decimal, or None when missing or not a finite number."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except ArithmeticError:
        return None
    return value if value.is_finite() and value >= 0 else None
