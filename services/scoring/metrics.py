"""Scoring's Prometheus metrics (in the shared registry): routing counts and feature drift."""

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from contracts.drift import FeatureDrift
from contracts.scoring import LoanScored
from services.common.metrics import REGISTRY

LOANS_SCORED = Counter(
    "loan_engine_loans_scored_total",
    "Loans scored, by routing decision.",
    ["decision"],
    registry=REGISTRY,
)
FEATURE_PSI = Gauge(
    "loan_engine_model_feature_psi",
    "Population stability index of a model input over the latest run against the training data.",
    ["feature"],
    registry=REGISTRY,
)
FEATURE_KS = Gauge(
    "loan_engine_model_feature_ks",
    "Binned Kolmogorov-Smirnov statistic of a model input over the latest run.",
    ["feature"],
    registry=REGISTRY,
)
DRIFT_LOANS = Gauge(
    "loan_engine_model_drift_loans",
    "Loans of the latest run the drift gauges were computed over.",
    registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "loan_engine_model_info",
    "The model version served (value 1).",
    ["model", "version"],
    registry=REGISTRY,
)


def record_scored(events: Iterable[LoanScored]) -> None:
    """Count a batch's loans by routing decision."""
    counts: dict[str, int] = {}
    for event in events:
        counts[event.routing.decision] = counts.get(event.routing.decision, 0) + 1
    for decision, count in counts.items():
        LOANS_SCORED.labels(decision=decision).inc(count)


def record_drift(drifts: Iterable[FeatureDrift]) -> None:
    """Set the drift gauges to a run's drift so far."""
    for item in drifts:
        FEATURE_PSI.labels(feature=item.feature).set(float(item.psi))
        FEATURE_KS.labels(feature=item.feature).set(float(item.ks))
        DRIFT_LOANS.set(item.loans)


def record_model(model: str, version: str) -> None:
    """Say which model version this process serves."""
    MODEL_INFO.labels(model=model, version=version).set(1)
