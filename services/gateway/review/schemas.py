"""Request and response shapes of the credit review endpoints (SPEC §8)."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.reviews import CaseStatus, ConditionType, DecisionType, Leaning, Outcome, Priority
from services.gateway.patterns import NO_NUL
from services.gateway.review.queue import SlaState


class CaseActionRequest(BaseModel):
    """The why of an action; `assignee` for assign (yourself when left out)."""

    model_config = {"extra": "forbid"}

    assignee: UUID | None = Field(None, description="The analyst to assign to (assign only).")
    notes: str | None = Field(None, max_length=4000, pattern=NO_NUL, description="Why (free text).")


class CaseSummary(BaseModel):
    """A case as the queue lists it."""

    case_id: UUID
    loan_id: UUID
    run_id: UUID
    seq: int
    seller_loan_number: str | None
    sales_team_id: str | None
    score: int
    routing_reason: str
    loan_amount: str | None
    status: CaseStatus
    assignee: UUID | None
    priority: Priority
    priority_score: int = Field(description="0-100 at the time of the answer (priority.py).")
    releases: int
    opened_at: datetime
    sla_deadline: datetime
    sla_state: SlaState
    sla_warned_at: datetime | None = Field(None, description="When the SLA job warned.")
    sla_breached_at: datetime | None = Field(None, description="When the SLA job saw it breach.")
    escalated_at: datetime | None = Field(None, description="When it went to the seniors.")


class QueuePage(BaseModel):
    """One page of the queue and how many cases match in all."""

    items: list[CaseSummary]
    total: int
    skip: int
    limit: int


class QueueSummary(BaseModel):
    """Counts of the open cases in scope."""

    total_pending: int
    total_assigned: int
    total_in_progress: int
    approaching_sla: int
    breached_sla: int
    by_priority: dict[str, int] = Field(examples=[{"critical": 1, "high": 4, "medium": 9}])


class DurationView(BaseModel):
    """Time from opening to decision, in seconds (nearest-rank percentiles)."""

    mean: int
    p50: int
    p90: int
    p95: int
    max: int


class SlaFiguresView(BaseModel):
    """How a set of cases fared against their SLA deadlines (see `sla_metrics.py`)."""

    cases: int = Field(description="Cases opened in the window.")
    decided: int = Field(description="Decided by a person (overrides awaiting approval count).")
    on_time: int = Field(description="Decided at or before the deadline.")
    late: int = Field(description="Decided after the deadline.")
    open: int = Field(description="Not decided yet.")
    open_breached: int = Field(description="Not decided and past the deadline now.")
    breaches: int = Field(description="late + open_breached.")
    on_time_rate: Decimal | None = Field(
        description="on_time / (decided + open_breached), 4 places; null when none is known.",
        examples=["0.9500"],
    )
    warnings: int = Field(description="Cases the SLA job warned about.")
    escalations: int = Field(description="Cases escalated to the senior analysts.")
    time_to_decision_seconds: DurationView | None


class SlaMetrics(SlaFiguresView):
    """`GET /review/sla-metrics`: the window's figures, overall and by priority at opening."""

    since: datetime
    until: datetime
    by_priority: dict[Priority, SlaFiguresView]


class CaseEvent(BaseModel):
    """One event of a case's history: who, when, why, and what it changed."""

    event_id: UUID
    action: str
    event_type: str
    actor_id: UUID | None
    actor_role: str
    notes: str | None
    assignee: UUID | None
    from_status: CaseStatus | None
    to_status: CaseStatus | None
    applied: bool
    reason: str | None
    occurred_at: datetime


class ScoreView(BaseModel):
    """The model's view of the loan."""

    model_version: str
    score: int
    probability_default: str
    risk_category: str
    routing_decision: str
    routing_reason: str
    routing_triggers: list[str]
    policy_version: str
    positive_factors: list[dict[str, Any]]
    negative_factors: list[dict[str, Any]]
    features: dict[str, Any]


class CaseException(BaseModel):
    """One of the loan's exceptions and its triage status."""

    exception_id: UUID
    exception_type: str
    category: str
    severity: str
    message: str
    status: str


class SimilarLoan(BaseModel):
    """A loan with a final decision near this one in the model's inputs."""

    loan_id: UUID
    run_id: UUID
    seq: int
    seller_loan_number: str | None
    score: int
    decision: DecisionType = Field(examples=["auto_approve"])
    distance: float = Field(description="Scaled distance of the model inputs (similar.py).")


class CaseDetail(CaseSummary):
    """A case with the score and factors, the loan, its exceptions, similar loans and history."""

    score_detail: ScoreView | None
    loan: dict[str, Any] | None
    exceptions: list[CaseException]
    similar_loans: list[SimilarLoan]
    history: list[CaseEvent]
    decisions: list["DecisionView"] = Field(
        description="Decisions taken on the case, oldest first."
    )
    model_leaning: Leaning = Field(
        description="Which way the model leans: a decision the other way is an override."
    )
    justification_min_length: int = Field(
        description="Characters an override's justification needs (after trimming)."
    )


class ConditionIn(BaseModel):
    """A condition of an approval."""

    model_config = {"extra": "forbid"}

    condition_type: ConditionType
    description: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)


class DecisionBody(BaseModel):
    """A decision: `approve` with terms, `approve_with_conditions` with conditions, or `decline`
    with reasoning; against the model's leaning, a justification of at least 50 characters."""

    model_config = {"extra": "forbid"}

    outcome: Outcome
    terms: str | None = Field(None, max_length=4000, pattern=NO_NUL)
    conditions: list[ConditionIn] = Field(default_factory=list, max_length=50)
    reasoning: str | None = Field(None, max_length=4000, pattern=NO_NUL)
    justification: str | None = Field(None, max_length=4000, pattern=NO_NUL)


class OverrideReviewBody(BaseModel):
    """Why an override is approved or rejected (required to reject)."""

    model_config = {"extra": "forbid"}

    notes: str | None = Field(None, max_length=4000, pattern=NO_NUL)


class DecisionView(BaseModel):
    """A loan's decision (an analyst's or the machine's) and where its override stands."""

    decision_id: UUID
    case_id: UUID | None
    loan_id: UUID
    run_id: UUID
    seq: int
    decision_type: DecisionType
    outcome: Outcome
    status: str = Field(examples=["final", "override_pending", "override_rejected"])
    terms: str | None
    conditions: list[dict[str, Any]]
    fulfilled: list[int] = Field(description="Ordinals (from 1) of the fulfilled conditions.")
    reasoning: str | None
    justification: str | None
    score: int
    model_leaning: str | None
    is_override: bool
    review_time_seconds: int | None
    decided_by: UUID | None
    decided_role: str
    decided_at: datetime
    override_by: UUID | None
    override_at: datetime | None
    override_notes: str | None


CaseDetail.model_rebuild()
