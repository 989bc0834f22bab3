"""Scoring's pure rules (SPEC §8): model inputs, score, risk category, top factors and routing.

The model itself (scikit-learn and XGBoost) lives in `model.py`; what it returns for a loan, a
probability of default and one SHAP contribution per feature, is turned into the published
assessment here. The routing policy is data (`policies/<version>.json`), read by `load_policy`.
"""

import json
import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

from contracts.drift import Counts, FeatureDrift, add_counts, bin_counts, drift
from contracts.loans import Disposition, LoanRecord
from contracts.scoring import (
    FEATURES,
    Factor,
    ModelLoaded,
    RiskCategory,
    Routing,
    RoutingDecision,
    RoutingReason,
    ScoringFeatures,
)

POLICIES = Path(__file__).parent / "policies"
CURRENT_POLICY = "2026.12.1"
TOP_FACTORS = 5
_VERSION = re.compile(r"\d+(\.\d+)*")
_SIX_PLACES = Decimal("0.000001")
_FOUR_PLACES = Decimal("0.0001")
_ONE = Decimal(1)

LABELS: Mapping[str, str] = {
    "credit_score": "Credit score",
    "ltv_ratio": "LTV ratio",
    "dti_ratio": "DTI ratio",
    "note_rate": "Note rate",
    "loan_amount": "Loan amount",
    "appraisal_to_price": "Appraisal to purchase price",
    "property_type": "Property type",
    "occupancy_status": "Occupancy",
    "loan_purpose": "Loan purpose",
}
_PERCENT = frozenset({"ltv_ratio", "dti_ratio", "note_rate"})


class PolicyError(ValueError):
    """A routing policy that is unknown or does not describe usable thresholds."""


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """Versioned routing thresholds, risk bands and the review triggers (SPEC §8)."""

    version: str
    auto_approve_min: int
    auto_decline_max: int
    low_min_score: int
    medium_min_score: int
    loan_amount_above: Decimal | None
    loan_purposes: frozenset[str]
    property_types: frozenset[str]

    def triggers(self, features: ScoringFeatures) -> tuple[RoutingReason, ...]:
        """The review triggers a loan sets off, in the policy's order."""
        fired: list[RoutingReason] = []
        amount = _decimal(features.loan_amount)
        limit = self.loan_amount_above
        if limit is not None and amount is not None and amount > limit:
            fired.append("loan_amount_above_limit")
        if features.loan_purpose in self.loan_purposes:
            fired.append("loan_purpose_listed")
        if features.property_type in self.property_types:
            fired.append("property_type_listed")
        return tuple(fired)


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the model says of one loan: P(default) and a SHAP contribution per feature."""

    probability_default: float
    contributions: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Assessment:
    """A loan's published assessment."""

    score: int
    probability_default: str
    risk_category: RiskCategory
    positive_factors: tuple[Factor, ...]
    negative_factors: tuple[Factor, ...]
    routing: Routing


def features_of(loan: LoanRecord) -> ScoringFeatures:
    """The model inputs of a loan: valid numbers as their canonical text, categories normalised."""
    fields = loan.fields
    numbers = {
        name: _number(getattr(fields, name), name in loan.invalid)
        for name in ("credit_score", "ltv_ratio", "dti_ratio", "note_rate", "loan_amount")
    }
    price = _decimal(_number(fields.purchase_price, "purchase_price" in loan.invalid))
    appraisal = _decimal(_number(fields.appraisal_value, "appraisal_value" in loan.invalid))
    ratio = None
    if price is not None and appraisal is not None and price > 0:
        ratio = str((appraisal / price).quantize(_FOUR_PLACES, rounding=ROUND_HALF_EVEN))
    return ScoringFeatures(
        **numbers,
        appraisal_to_price=ratio,
        property_type=_category(fields.property_type),
        occupancy_status=_category(fields.occupancy_status),
        loan_purpose=_category(fields.loan_purpose),
    )


def assess(
    disposition: Disposition,
    features: ScoringFeatures,
    prediction: Prediction,
    policy: RoutingPolicy,
) -> Assessment:
    """Score, risk category, top factors and routing of one loan."""
    probability = probability_text(prediction.probability_default)
    score = score_of(probability)
    positive, negative = top_factors(features, prediction.contributions)
    return Assessment(
        score=score,
        probability_default=probability,
        risk_category=risk_category(score, policy),
        positive_factors=positive,
        negative_factors=negative,
        routing=route(disposition, score, features, policy),
    )


def probability_text(probability: float) -> str:
    """P(default) as fixed 6-decimal text, the same for the same float on every replay."""
    if not math.isfinite(probability) or not 0.0 <= probability <= 1.0:
        raise ValueError(f"a probability must lie in [0, 1], not {probability!r}")
    return str(Decimal(repr(probability)).quantize(_SIX_PLACES, rounding=ROUND_HALF_EVEN))


def score_of(probability: str) -> int:
    """The score, 0-1000 and higher for safer loans: 1000 x (1 - P(default)), half-even."""
    exact = (_ONE - Decimal(probability)) * 1000
    return int(exact.quantize(_ONE, rounding=ROUND_HALF_EVEN))


def risk_category(score: int, policy: RoutingPolicy) -> RiskCategory:
    """low at or above the policy's low band, medium at or above its medium band, else high."""
    if score >= policy.low_min_score:
        return "low"
    return "medium" if score >= policy.medium_min_score else "high"


def route(
    disposition: Disposition, score: int, features: ScoringFeatures, policy: RoutingPolicy
) -> Routing:
    """Rejected loans auto-decline; a review trigger sends to a person; else the thresholds."""
    if disposition == "rejected":
        return _routing("auto_decline", "hard_exception", (), policy.version)
    triggers = policy.triggers(features)
    if triggers:
        return _routing("human_review", triggers[0], triggers, policy.version)
    if score >= policy.auto_approve_min:
        return _routing("auto_approve", "score_at_or_above_auto_approve", (), policy.version)
    if score <= policy.auto_decline_max:
        return _routing("auto_decline", "score_at_or_below_auto_decline", (), policy.version)
    return _routing("human_review", "borderline_score", (), policy.version)


@cache
def _routing(
    decision: RoutingDecision,
    reason: RoutingReason,
    triggers: tuple[RoutingReason, ...],
    version: str,
) -> Routing:
    """One of the few routings there are, built once (contracts are immutable)."""
    return Routing(decision=decision, reason=reason, triggers=triggers, policy_version=version)


def top_factors(
    features: ScoringFeatures, contributions: Sequence[float]
) -> tuple[tuple[Factor, ...], tuple[Factor, ...]]:
    """The 5 strongest contributions making the loan safer, and the 5 making it riskier.

    Contributions are in log-odds of default (negative is safer), rounded to 6 places first
    (Python's correctly rounded `round`, the same on every platform) so ordering and text agree;
    ties go in feature order. A contribution that rounds to zero is neither.
    """
    if len(contributions) != len(FEATURES):
        raise ValueError(f"expected {len(FEATURES)} contributions, got {len(contributions)}")
    rounded = [(round(float(value), 6), index) for index, value in enumerate(contributions)]
    safer = sorted((item for item in rounded if item[0] < 0), key=lambda item: item[0])
    riskier = sorted((item for item in rounded if item[0] > 0), key=lambda item: -item[0])
    return (
        tuple(_factor(features, index, value) for value, index in safer[:TOP_FACTORS]),
        tuple(_factor(features, index, value) for value, index in riskier[:TOP_FACTORS]),
    )


def shown_value(feature: str, text: str | None) -> str:
    """A feature's value as a person reads it: `80.5%`, `$250,000.00`, `condo` or `missing`."""
    if text is None:
        return "missing"
    if feature in _PERCENT:
        return f"{text}%"
    if feature == "loan_amount":
        amount = _decimal(text)
        return f"${amount:,}" if amount is not None else text
    return text


def _factor(features: ScoringFeatures, index: int, contribution: float) -> Factor:
    feature = FEATURES[index]
    value = shown_value(feature, getattr(features, feature))
    effect = "raises" if contribution > 0 else "lowers"
    subject = f"{LABELS[feature]} missing (imputed)" if value == "missing" else LABELS[feature]
    of = "" if value == "missing" else f" of {value}"
    return Factor(
        feature=feature,
        description=f"{subject}{of} {effect} the estimated default risk",
        value=value,
        contribution=f"{contribution:.6f}",
    )


class RunDriftMonitor:
    """Bin counts of the runs scored lately, folded batch by batch, for the drift gauges.

    Bounded: the oldest run is forgotten once `max_runs` are kept. A redelivered batch is counted
    once (batches are remembered by number).
    """

    def __init__(self, reference: ModelLoaded, max_runs: int = 32) -> None:
        self.reference = reference
        self.max_runs = max_runs
        self._runs: OrderedDict[UUID, tuple[Counts, set[int]]] = OrderedDict()

    def observe(
        self, run_id: UUID, batch_seq: int, features: Sequence[ScoringFeatures]
    ) -> tuple[FeatureDrift, ...]:
        """Fold one batch into its run and answer the run's drift so far."""
        counts, seen = self._runs.pop(run_id, None) or ({}, set())
        if batch_seq not in seen:
            batch = bin_counts(self.reference, features)
            counts = add_counts(counts, batch) if counts else batch
            seen.add(batch_seq)
        self._runs[run_id] = (counts, seen)
        while len(self._runs) > self.max_runs:
            self._runs.popitem(last=False)
        return drift(self.reference, counts)


@cache
def load_policy(version: str | None = None) -> RoutingPolicy:
    """The routing policy of `version` shipped in policies/ (default: the current one)."""
    wanted = CURRENT_POLICY if version is None else version
    path = POLICIES / f"{wanted}.json"
    if not _VERSION.fullmatch(wanted) or not path.is_file():
        raise PolicyError(f"unknown routing policy version {wanted!r}")
    return parse_policy(json.loads(path.read_text(encoding="utf-8")))


def parse_policy(data: Mapping[str, Any]) -> RoutingPolicy:
    """A routing policy from its JSON data, checked so routing never meets a bad threshold."""
    try:
        bands, triggers = data["risk_categories"], data["review_triggers"]
        limit = triggers.get("loan_amount_above")
        if limit is not None and (not isinstance(limit, str) or _decimal(limit) is None):
            raise ValueError(f"loan_amount_above {limit!r} is not a number written as text")
        policy = RoutingPolicy(
            version=str(data["version"]),
            auto_approve_min=_score(data["auto_approve_min"]),
            auto_decline_max=_score(data["auto_decline_max"]),
            low_min_score=_score(bands["low_min_score"]),
            medium_min_score=_score(bands["medium_min_score"]),
            loan_amount_above=_decimal(limit),
            loan_purposes=frozenset(_category_list(triggers.get("loan_purposes", ()))),
            property_types=frozenset(_category_list(triggers.get("property_types", ()))),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PolicyError(f"malformed routing policy: {error!r}") from error
    if policy.auto_decline_max >= policy.auto_approve_min:
        raise PolicyError("auto_decline_max must be below auto_approve_min")
    if policy.medium_min_score > policy.low_min_score:
        raise PolicyError("medium_min_score must not exceed low_min_score")
    return policy


def _score(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000:
        raise ValueError(f"a score threshold must be a whole number 0-1000, not {value!r}")
    return value


def _category_list(values: object) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise ValueError(f"expected a list of text, not {values!r}")
    return [value.strip().lower() for value in values]


def _number(text: str | None, invalid: bool) -> str | None:
    """A numeric field's canonical text when it is present, valid and finite."""
    if invalid or text is None or not text.strip():
        return None
    return text if _decimal(text) is not None else None


def _category(text: str | None) -> str | None:
    value = None if text is None else text.strip().lower()
    return value or None


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
