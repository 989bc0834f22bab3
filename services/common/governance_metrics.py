"""Metrics of SPEC §7: loans' data-quality scores (rules) and open reconciliation findings."""

from collections.abc import Iterable, Mapping
from decimal import Decimal

from prometheus_client import Gauge, Histogram

from services.common.metrics import REGISTRY, observe_batch

DQ_SCORE = Histogram(
    "loan_engine_loan_dq_score",
    "Data-quality score of each evaluated loan (0-100, SPEC §3.4).",
    buckets=(25, 50, 75, 90, 95, 99, 100),
    registry=REGISTRY,
)
RECONCILIATION_FINDINGS = Gauge(
    "loan_engine_reconciliation_findings",
    "Findings not accepted, over every reconciled completed run, by kind.",
    ["kind"],
    registry=REGISTRY,
)
FINDING_KINDS = ("mismatched", "source_only", "downstream_only")


def record_dq_scores(scores: Iterable[Decimal]) -> None:
    """Observe evaluated loans' dq_scores (a batch's at once)."""
    observe_batch(DQ_SCORE, scores)


def set_reconciliation_findings(open_by_kind: Mapping[str, int]) -> None:
    """Set the open findings of every kind (a kind without findings reads 0)."""
    for kind in FINDING_KINDS:
        RECONCILIATION_FINDINGS.labels(kind=kind).set(open_by_kind.get(kind, 0))
