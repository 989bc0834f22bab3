"""Credit scoring events (SPEC §8): each loan's score, its top factors and its routing.

A scored batch mirrors the dispositioned batch it came from (same run, same number, same loans in
tape order) and carries the model inputs of every loan, so drift (`contracts.drift`) and similar
loans can be computed from the log alone. `models.v1` carries the model card of every model the
scoring service serves: its metrics and the training distribution drift is measured against.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from contracts.base import Contract, Envelope
from contracts.loans import Disposition, RunParams

RoutingDecision = Literal["auto_approve", "auto_decline", "human_review"]
RoutingReason = Literal[
    "hard_exception",
    "score_at_or_above_auto_approve",
    "score_at_or_below_auto_decline",
    "borderline_score",
    "loan_amount_above_limit",
    "loan_purpose_listed",
    "property_type_listed",
]
RiskCategory = Literal["low", "medium", "high"]

NUMERIC_FEATURES: tuple[str, ...] = (
    "credit_score",
    "ltv_ratio",
    "dti_ratio",
    "note_rate",
    "loan_amount",
    "appraisal_to_price",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("property_type", "occupancy_status", "loan_purpose")
FEATURES: tuple[str, ...] = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)


class ScoringFeatures(Contract):
    """The model's inputs as text: numbers as exact decimals, categories lower-cased and trimmed.

    `None` is a missing (or invalid) value, which the model imputes (median / `unknown`).
    """

    credit_score: str | None = Field(default=None, examples=["742"])
    ltv_ratio: str | None = Field(default=None, examples=["80.5"])
    dti_ratio: str | None = Field(default=None, examples=["36.2"])
    note_rate: str | None = Field(default=None, examples=["6.875"])
    loan_amount: str | None = Field(default=None, examples=["250000.00"])
    appraisal_to_price: str | None = Field(
        default=None,
        description="appraisal_value / purchase_price, 4 decimals.",
        examples=["1.0200"],
    )
    property_type: str | None = Field(default=None, examples=["condo"])
    occupancy_status: str | None = Field(default=None, examples=["primary"])
    loan_purpose: str | None = Field(default=None, examples=["cash_out_refinance"])


class Factor(Contract):
    """One SHAP contribution of a feature to the loan's log-odds of default."""

    feature: str = Field(examples=["credit_score"])
    description: str = Field(examples=["Credit score of 742 lowers the estimated default risk"])
    value: str = Field(description="The value shown: the model input, or `missing`.")
    contribution: str = Field(
        description="SHAP value in log-odds of default, 6 decimals; negative makes the loan safer.",
        examples=["-0.412300"],
    )


class Routing(Contract):
    """Where the loan goes next and why; `triggers` lists every review rule that fired."""

    decision: RoutingDecision
    reason: RoutingReason
    triggers: tuple[RoutingReason, ...] = ()
    policy_version: str = Field(examples=["2026.12.1"])


class LoanScored(Envelope):
    """A loan's model score, top factors and routing (scoring).

    `occurred_at` is the dispositioned event's, so a replay under the same model version and
    routing policy produces the same bytes.
    """

    event_type: Literal["loan.scored"] = "loan.scored"
    loan_id: UUID
    seq: int = Field(ge=1, description="Position in the run's tape order, from 1.")
    seller_loan_number: str | None = None
    disposition: Disposition
    model_version: str = Field(examples=["3"])
    score: int = Field(
        ge=0, le=1000, description="1000 x (1 - probability_default); higher is safer."
    )
    probability_default: str = Field(description="6 decimals.", examples=["0.083412"])
    risk_category: RiskCategory
    positive_factors: tuple[Factor, ...] = Field(
        default=(), max_length=5, description="Up to 5 strongest contributions making it safer."
    )
    negative_factors: tuple[Factor, ...] = Field(
        default=(), max_length=5, description="Up to 5 strongest contributions making it riskier."
    )
    routing: Routing
    features: ScoringFeatures


class ScoredBatch(Contract):
    """The scored loans of one dispositioned batch: same run, number and order."""

    schema_version: int = 1
    batch_type: Literal["loans.scored"] = "loans.scored"
    run_id: UUID
    batch_seq: int = Field(ge=0, description="The batch's number in its run, from 0.")
    params: RunParams
    model_version: str
    policy_version: str
    events: tuple[LoanScored, ...]

    def features(self) -> list[ScoringFeatures]:
        """The model inputs of the batch's loans, in order (what drift is measured on)."""
        return [event.features for event in self.events]


class NumericReference(Contract):
    """A numeric feature's training distribution: decile edges and each bin's share."""

    feature: str
    edges: tuple[str, ...] = Field(
        description="Inner bin edges, ascending; bin i is (e[i-1], e[i]]."
    )
    shares: tuple[str, ...] = Field(description="Training share per bin (len(edges) + 1 bins).")
    missing_share: str = Field(description="Training share of missing values.")


class CategoricalReference(Contract):
    """A categorical feature's training distribution: each category's share."""

    feature: str
    categories: tuple[str, ...] = Field(description="Known categories; others count as `other`.")
    shares: tuple[str, ...] = Field(description="Training share per category, then `other`.")


class ModelMetrics(Contract):
    """Cross-validated metrics of one estimator (mean over the folds), 4 decimals."""

    auc: str
    gini: str
    ks: str
    precision: str
    recall: str
    f1: str


class ModelLoaded(Contract):
    """The model card of the model the scoring service serves (keyed by model name)."""

    event_type: Literal["model.loaded"] = "model.loaded"
    schema_version: int = 1
    event_id: UUID = Field(description="uuid5 of the model name and version: one per version.")
    model_name: str = Field(examples=["loan-engine-scoring"])
    model_version: str = Field(examples=["3"])
    trained_at: datetime
    training_samples: int
    training_seed: int
    default_rate: str = Field(description="Share of defaults in the training history.")
    metrics: dict[str, ModelMetrics] = Field(description="Estimator name to CV metrics.")
    numeric_reference: tuple[NumericReference, ...]
    categorical_reference: tuple[CategoricalReference, ...]
    occurred_at: datetime
    producer: str = "scoring"
