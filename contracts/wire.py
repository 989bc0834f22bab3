"""The loan topics' wire types: msgspec Structs that mirror `contracts.loans` field for field.

The pydantic models in `contracts.loans` stay the source of truth (the committed JSON Schemas and
the API documentation are generated from them). These Structs are what the workers decode, build
and encode on the hot path: the same JSON bytes, the same fields in the same order, types and
bounds validated on decode, at a fraction of the CPU (measured in `benchmarks/codec.py`).
`tests/unit/contracts/test_wire.py` holds the two in agreement: same bytes for generated batches,
same accept/reject on bad input.

Validation is strict where pydantic's JSON mode is lax: a number written as a string, a float
for an integer or a datetime for a date are rejected here (no producer writes them).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import msgspec

from contracts.loans import Category, Disposition, Severity
from contracts.numbers import DEFAULT_IRR_TARGET

Count = Annotated[int, msgspec.Meta(ge=0)]
Position = Annotated[int, msgspec.Meta(ge=1)]


class Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """Immutable, closed to unknown fields, and acyclic (the collector never scans them)."""


def _finite(name: str, value: Decimal) -> None:
    if not value.is_finite():
        raise ValueError(f"`{name}` must be a finite number")


class RowRef(Wire, kw_only=True):
    source_file: str
    row: Position


class LoanFields(Wire, kw_only=True):
    seller_loan_number: str | None = None
    loan_amount: str | None = None
    note_rate: str | None = None
    ltv_ratio: str | None = None
    dti_ratio: str | None = None
    credit_score: str | None = None
    property_type: str | None = None
    occupancy_status: str | None = None
    loan_purpose: str | None = None
    purchase_price: str | None = None
    appraisal_value: str | None = None


class LoanRecord(Wire, kw_only=True):
    loan_id: UUID
    seq: Position
    source_file: str
    row: Position
    fields: LoanFields
    invalid: tuple[str, ...] = ()
    extra: dict[str, str] = {}
    duplicate_of: RowRef | None = None


class LoanException(Wire, kw_only=True):
    exception_type: str
    category: Category
    severity: Severity
    message: str
    rejection_criteria: str


class QualityCounts(Wire, kw_only=True):
    present_fields: Annotated[int, msgspec.Meta(ge=0, le=11)]
    numeric_present: Annotated[int, msgspec.Meta(ge=0, le=7)]
    numeric_valid: Annotated[int, msgspec.Meta(ge=0, le=7)]
    unique: bool
    rules_passed: Annotated[int, msgspec.Meta(ge=0, le=10)]
    dq_score: Decimal

    def __post_init__(self) -> None:
        _finite("dq_score", self.dq_score)


class Pricing(Wire, kw_only=True):
    pricing_spread: str
    final_price: str


class RunParams(Wire, kw_only=True):
    irr_target: Decimal = DEFAULT_IRR_TARGET
    pdate: date
    sales_team_id: str | None = None
    # Additive and optional, as in `contracts.loans.RunParams`: off the wire when unset.
    rule_set_version: str | None | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        # msgspec's bounds apply to int and float only: Decimal's are checked here.
        _finite("irr_target", self.irr_target)
        if not 0 < self.irr_target < 100:
            raise ValueError("`irr_target` must be greater than 0 and less than 100")
        if self.rule_set_version is None:
            # pydantic leaves a None version off the wire; so does this type.
            msgspec.structs.force_setattr(self, "rule_set_version", msgspec.UNSET)


class _Envelope(Wire, kw_only=True):
    event_id: UUID
    event_type: str
    schema_version: int = 1
    run_id: UUID
    occurred_at: datetime
    producer: str


class LoanIngested(_Envelope, kw_only=True):
    event_type: Literal["loan.ingested"] = "loan.ingested"
    loan: LoanRecord


class LoanEvaluated(_Envelope, kw_only=True):
    event_type: Literal["loan.evaluated"] = "loan.evaluated"
    loan: LoanRecord
    exceptions: tuple[LoanException, ...] = ()
    quality: QualityCounts
    rule_set_version: str


class LoanPriced(_Envelope, kw_only=True):
    event_type: Literal["loan.priced"] = "loan.priced"
    loan: LoanRecord
    exceptions: tuple[LoanException, ...] = ()
    quality: QualityCounts
    rule_set_version: str
    pricing: Pricing | None = None


class LoanDispositioned(_Envelope, kw_only=True):
    event_type: Literal["loan.dispositioned"] = "loan.dispositioned"
    loan: LoanRecord
    exceptions: tuple[LoanException, ...] = ()
    quality: QualityCounts
    rule_set_version: str
    pricing: Pricing | None = None
    disposition: Disposition


class _Batch(Wire, kw_only=True):
    schema_version: int = 1
    run_id: UUID
    batch_seq: Count
    params: RunParams


class IngestedBatch(_Batch, kw_only=True):
    batch_type: Literal["loans.ingested"] = "loans.ingested"
    events: tuple[LoanIngested, ...]


class EvaluatedBatch(_Batch, kw_only=True):
    batch_type: Literal["loans.evaluated"] = "loans.evaluated"
    events: tuple[LoanEvaluated, ...]


class PricedBatch(_Batch, kw_only=True):
    batch_type: Literal["loans.priced"] = "loans.priced"
    events: tuple[LoanPriced, ...]


class DispositionedBatch(_Batch, kw_only=True):
    batch_type: Literal["loans.dispositioned"] = "loans.dispositioned"
    events: tuple[LoanDispositioned, ...]


LoanBatch = IngestedBatch | EvaluatedBatch | PricedBatch | DispositionedBatch


# loans.scored.v1, mirroring `contracts.scoring` (the gateway projector decodes these).
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


class ScoringFeatures(Wire, kw_only=True):
    credit_score: str | None = None
    ltv_ratio: str | None = None
    dti_ratio: str | None = None
    note_rate: str | None = None
    loan_amount: str | None = None
    appraisal_to_price: str | None = None
    property_type: str | None = None
    occupancy_status: str | None = None
    loan_purpose: str | None = None


class Factor(Wire, kw_only=True):
    feature: str
    description: str
    value: str
    contribution: str


Factors = Annotated[tuple[Factor, ...], msgspec.Meta(max_length=5)]


class Routing(Wire, kw_only=True):
    decision: RoutingDecision
    reason: RoutingReason
    triggers: tuple[RoutingReason, ...] = ()
    policy_version: str


class LoanScored(_Envelope, kw_only=True):
    event_type: Literal["loan.scored"] = "loan.scored"
    loan_id: UUID
    seq: Position
    seller_loan_number: str | None = None
    disposition: Disposition
    model_version: str
    score: Annotated[int, msgspec.Meta(ge=0, le=1000)]
    probability_default: str
    risk_category: RiskCategory
    positive_factors: Factors = ()
    negative_factors: Factors = ()
    routing: Routing
    features: ScoringFeatures


class ScoredBatch(Wire, kw_only=True):
    schema_version: int = 1
    batch_type: Literal["loans.scored"] = "loans.scored"
    run_id: UUID
    batch_seq: Count
    params: RunParams
    model_version: str
    policy_version: str
    events: tuple[LoanScored, ...]


S = TypeVar("S", bound=Wire)


def from_contract(model: Any, struct: type[S]) -> S:
    """The wire Struct of a pydantic contract with the same fields, validated as on decode."""
    return msgspec.convert(model, struct, from_attributes=True)
