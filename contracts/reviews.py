"""Credit review events on `reviews.v1`, keyed by case id (SPEC §8).

A case is opened for every loan the scoring service routed to `human_review`. The gateway's review
job opens it (`ReviewCaseOpened`); its ids are deterministic (`contracts.ids.review_case_id`, and
the event id `uuid5(NS, "review.case_opened/{run_id}/{loan_id}")`), so a job that runs twice, or
on two gateway replicas, publishes the same case and the fold keeps the first. Every later action
a person takes on the case is one event: who (`actor_id`, `actor_role`), when and why.
"""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, TypeAdapter

from contracts.base import Contract

CaseStatus = Literal["pending", "assigned", "in_progress", "override_pending", "decided"]
CASE_STATUSES: tuple[CaseStatus, ...] = (
    "pending",
    "assigned",
    "in_progress",
    "override_pending",
    "decided",
)
Outcome = Literal["approve", "approve_with_conditions", "decline"]
DecisionType = Literal[
    "auto_approve",
    "auto_decline",
    "analyst_approve",
    "analyst_decline",
    "analyst_approve_with_conditions",
]
ConditionType = Literal[
    "documentation", "collateral", "guarantor", "reduced_amount", "reduced_term", "other"
]
Leaning = Literal["approve", "decline"]
Priority = Literal["critical", "high", "medium", "low"]
PRIORITIES: tuple[Priority, ...] = ("critical", "high", "medium", "low")
SYSTEM_ROLE = "system"


class ReviewEvent(Contract):
    """What every review event carries: the case, its loan and run, the actor and the time."""

    event_id: UUID = Field(description="Unique per action; a replay carries the same id.")
    schema_version: int = Field(default=1, description="Version of this event's schema.")
    case_id: UUID = Field(description="uuid5(NS, 'review-case/{loan_id}'): one case per loan.")
    loan_id: UUID
    run_id: UUID = Field(description="The run whose loan is reviewed.")
    actor_id: UUID | None = Field(None, description="The user who acted; null for the system.")
    actor_role: str = Field(examples=["analyst", "system"])
    notes: str | None = Field(None, max_length=4000, description="Why (free text).")
    request_id: str | None = Field(None, description="The API request that published it.")
    occurred_at: datetime = Field(description="When the gateway accepted the action.")


class ReviewCaseOpened(ReviewEvent):
    """A `human_review` loan awaits a person (→ pending), with its priority inputs and deadline."""

    event_type: Literal["review.case_opened"] = "review.case_opened"
    seq: int = Field(ge=1, description="The loan's position in its run's tape order.")
    seller_loan_number: str | None = None
    model_version: str = Field(examples=["3"])
    score: int = Field(ge=0, le=1000)
    routing_reason: str = Field(examples=["borderline_score"])
    loan_amount: str | None = Field(None, description="Exact decimal text, when known.")
    scored_at: datetime = Field(description="When the loan was scored (its age counts from it).")
    priority_score: int = Field(ge=0, le=100, description="Priority at opening (0-100).")
    priority: Priority
    sla_deadline: datetime = Field(description="When the case must be decided.")


class ReviewCaseAssigned(ReviewEvent):
    """The case now belongs to `assignee` (pending | assigned → assigned).

    The system (no actor id, role `system`) assigns a pending case whose SLA deadline is near
    (the auto-assign job); its event id `uuid5(NS, "review.auto_assigned/{case_id}/{releases}")`
    makes a re-run or a second replica publish the same assignment."""

    event_type: Literal["review.case_assigned"] = "review.case_assigned"
    assignee: UUID = Field(description="The analyst the case is assigned to.")


class ReviewCaseStarted(ReviewEvent):
    """The assignee began working on the case (assigned → in_progress)."""

    event_type: Literal["review.case_started"] = "review.case_started"


class ReviewCaseReleased(ReviewEvent):
    """The case went back to the queue (assigned | in_progress → pending), one step lower."""

    event_type: Literal["review.case_released"] = "review.case_released"


class Condition(Contract):
    """A condition of an approval."""

    condition_type: ConditionType
    description: str = Field(min_length=1, max_length=2000)


class ReviewDecisionRecorded(ReviewEvent):
    """The assignee decided the case (in_progress → decided, or → override_pending when the
    decision goes against the model's leaning and needs a second person)."""

    event_type: Literal["review.decision_recorded"] = "review.decision_recorded"
    decision_id: UUID = Field(description="The decision (its event id).")
    seq: int = Field(ge=1)
    decision_type: DecisionType
    outcome: Outcome
    terms: str | None = Field(None, max_length=4000, description="Approval terms.")
    conditions: tuple[Condition, ...] = ()
    reasoning: str | None = Field(None, max_length=4000, description="Why (a decline's reason).")
    justification: str | None = Field(None, max_length=4000, description="Why an override.")
    score: int = Field(ge=0, le=1000)
    model_leaning: Leaning
    is_override: bool = Field(description="Against the model's leaning: needs a second person.")
    review_time_seconds: int = Field(ge=0, description="From start to decision.")


class ReviewOverrideApproved(ReviewEvent):
    """A different senior analyst or admin approved the override (override_pending → decided)."""

    event_type: Literal["review.override_approved"] = "review.override_approved"
    decision_id: UUID


class ReviewOverrideRejected(ReviewEvent):
    """The override was rejected (override_pending → in_progress): the analyst decides again."""

    event_type: Literal["review.override_rejected"] = "review.override_rejected"
    decision_id: UUID
    notes: str = Field(min_length=1, max_length=4000)


class ReviewConditionFulfilled(ReviewEvent):
    """One condition of the case's approval was met (`ordinal` from 1, in the decision's order)."""

    event_type: Literal["review.condition_fulfilled"] = "review.condition_fulfilled"
    decision_id: UUID
    ordinal: int = Field(ge=1)


class ReviewSlaWarned(ReviewEvent):
    """The system warned that an open case's SLA deadline is near (`review_warning_hours`).

    Event id `uuid5(NS, "review.sla_warned/{case_id}")`: one warning per case, whatever the
    re-runs of the SLA job or the number of gateway replicas."""

    event_type: Literal["review.sla_warned"] = "review.sla_warned"
    sla_deadline: datetime


class ReviewSlaBreached(ReviewEvent):
    """The system recorded that an open case passed its SLA deadline undecided (one per case)."""

    event_type: Literal["review.sla_breached"] = "review.sla_breached"
    sla_deadline: datetime


class ReviewCaseEscalated(ReviewEvent):
    """The system escalated a breached case to the senior analysts (one per case)."""

    event_type: Literal["review.case_escalated"] = "review.case_escalated"
    escalated_to: Literal["senior_analyst"] = "senior_analyst"
    reason: str = Field(examples=["sla_breached"])


class AutoDecision(Contract):
    """The machine's decision of one loan that never needed a person."""

    loan_id: UUID
    seq: int = Field(ge=1)
    decision_type: Literal["auto_approve", "auto_decline"]
    score: int = Field(ge=0, le=1000)


class AutoDecisionsRecorded(Contract):
    """The auto decisions of one scored batch (keyed `{run_id}:{batch_seq}`), recorded by the
    review job so that every loan of a run has a decision on reviews.v1."""

    event_type: Literal["review.auto_decisions_recorded"] = "review.auto_decisions_recorded"
    schema_version: int = 1
    event_id: UUID = Field(description="uuid5 of the run and batch: one per scored batch.")
    run_id: UUID
    batch_seq: int = Field(ge=0)
    decisions: tuple[AutoDecision, ...]
    occurred_at: datetime


REVIEW_EVENTS: tuple[type[Contract], ...] = (
    ReviewCaseOpened,
    ReviewCaseAssigned,
    ReviewCaseStarted,
    ReviewCaseReleased,
    ReviewDecisionRecorded,
    ReviewOverrideApproved,
    ReviewOverrideRejected,
    ReviewConditionFulfilled,
    ReviewSlaWarned,
    ReviewSlaBreached,
    ReviewCaseEscalated,
    AutoDecisionsRecorded,
)
AnyReviewEvent = Annotated[
    ReviewCaseOpened
    | ReviewCaseAssigned
    | ReviewCaseStarted
    | ReviewCaseReleased
    | ReviewDecisionRecorded
    | ReviewOverrideApproved
    | ReviewOverrideRejected
    | ReviewConditionFulfilled
    | ReviewSlaWarned
    | ReviewSlaBreached
    | ReviewCaseEscalated
    | AutoDecisionsRecorded,
    Field(discriminator="event_type"),
]
REVIEW_EVENT: TypeAdapter[AnyReviewEvent] = TypeAdapter(AnyReviewEvent)
