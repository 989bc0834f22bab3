"""Decisions on review cases (SPEC §8), pure: validation per outcome, the model's leaning,
override detection and the four-eyes rules.

The model leans `approve` when the score is at or above the middle of the review band
((auto_approve_min + auto_decline_max) / 2), else `decline`. A decision whose direction
(approve or approve_with_conditions → approve; decline → decline) differs from the leaning is an
override: it needs a justification of at least 50 characters and waits (override_pending) for a
different `senior_analyst` or `admin` to approve it; a rejection sends the case back to its
analyst (in_progress).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from contracts.reviews import (
    Condition,
    DecisionType,
    Leaning,
    Outcome,
    ReviewConditionFulfilled,
    ReviewDecisionRecorded,
    ReviewOverrideApproved,
    ReviewOverrideRejected,
)
from services.gateway.review.domain import (
    Actor,
    CaseRef,
    CaseState,
    InvalidRequest,
    InvalidTransition,
    check_decision,
    check_fulfilment,
    check_override_review,
)
from services.gateway.review.priority import PriorityPolicy

JUSTIFICATION_MIN = 50
DECISION_TYPES: dict[Outcome, DecisionType] = {
    "approve": "analyst_approve",
    "approve_with_conditions": "analyst_approve_with_conditions",
    "decline": "analyst_decline",
}


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """What a person decided and why."""

    outcome: Outcome
    terms: str | None = None
    conditions: Sequence[Condition] = ()
    reasoning: str | None = None
    justification: str | None = None


def leaning(score: int, policy: PriorityPolicy) -> Leaning:
    """Which way the model leans on a score between the thresholds (or beyond them)."""
    middle = (policy.auto_approve_min + policy.auto_decline_max) / 2
    return "approve" if score >= middle else "decline"


def direction(outcome: Outcome) -> Leaning:
    """Whether an outcome approves or declines."""
    return "decline" if outcome == "decline" else "approve"


def is_override(outcome: Outcome, score: int, policy: PriorityPolicy) -> bool:
    """Whether deciding `outcome` on a loan of this score goes against the model."""
    return direction(outcome) != leaning(score, policy)


def _text(value: str | None) -> str | None:
    return (value or "").strip() or None


def validate(request: DecisionRequest, override: bool) -> None:
    """InvalidRequest unless the decision carries what its outcome needs."""
    if request.outcome == "approve" and _text(request.terms) is None:
        raise InvalidRequest("approve requires the terms")
    if request.outcome == "approve_with_conditions" and not request.conditions:
        raise InvalidRequest("approve_with_conditions requires at least one condition")
    if request.outcome != "approve_with_conditions" and request.conditions:
        raise InvalidRequest("only approve_with_conditions takes conditions")
    if request.outcome == "decline" and _text(request.reasoning) is None:
        raise InvalidRequest("decline requires the reasoning")
    if override and len(_text(request.justification) or "") < JUSTIFICATION_MIN:
        raise InvalidRequest(
            f"This decision goes against the model: a justification of at least "
            f"{JUSTIFICATION_MIN} characters is required"
        )


def decide_case(
    ref: CaseRef,
    state: CaseState,
    seq: int,
    score: int,
    actor: Actor,
    request: DecisionRequest,
    policy: PriorityPolicy,
    at: datetime,
    event_id: UUID,
    request_id: str | None = None,
) -> ReviewDecisionRecorded:
    """The decision event of the case's assignee, or the ReviewError that forbids it."""
    check_decision(state, actor)
    override = is_override(request.outcome, score, policy)
    validate(request, override)
    started = state.started_at or at
    return ReviewDecisionRecorded(
        event_id=event_id,
        case_id=ref.case_id,
        loan_id=ref.loan_id,
        run_id=ref.run_id,
        actor_id=actor.user_id,
        actor_role=actor.role,
        request_id=request_id,
        occurred_at=at,
        decision_id=event_id,
        seq=seq,
        decision_type=DECISION_TYPES[request.outcome],
        outcome=request.outcome,
        terms=_text(request.terms),
        conditions=tuple(request.conditions),
        reasoning=_text(request.reasoning),
        justification=_text(request.justification),
        score=score,
        model_leaning=leaning(score, policy),
        is_override=override,
        review_time_seconds=max(0, int((at - started).total_seconds())),
    )


def override_review(
    ref: CaseRef,
    state: CaseState,
    actor: Actor,
    approve: bool,
    notes: str | None,
    at: datetime,
    event_id: UUID,
    request_id: str | None = None,
) -> ReviewOverrideApproved | ReviewOverrideRejected:
    """The approval or rejection of the case's pending override."""
    decision_id = state.decision_id
    if decision_id is None:
        raise InvalidTransition("review the override of", state.status)
    check_override_review(state, actor, decision_id)
    common = {
        "event_id": event_id,
        "case_id": ref.case_id,
        "loan_id": ref.loan_id,
        "run_id": ref.run_id,
        "actor_id": actor.user_id,
        "actor_role": actor.role,
        "request_id": request_id,
        "occurred_at": at,
        "decision_id": decision_id,
    }
    if approve:
        return ReviewOverrideApproved(**common, notes=_text(notes))
    text = _text(notes)
    if text is None:
        raise InvalidRequest("Rejecting an override requires notes saying why")
    return ReviewOverrideRejected(**common, notes=text)


def fulfil(
    ref: CaseRef,
    state: CaseState,
    actor: Actor,
    ordinal: int,
    notes: str | None,
    at: datetime,
    event_id: UUID,
    request_id: str | None = None,
) -> ReviewConditionFulfilled:
    """The event marking one condition of the case's approval fulfilled."""
    if state.decision_id is None:
        raise InvalidTransition("fulfil a condition of", state.status)
    check_fulfilment(state, actor, state.decision_id, ordinal)
    return ReviewConditionFulfilled(
        event_id=event_id,
        case_id=ref.case_id,
        loan_id=ref.loan_id,
        run_id=ref.run_id,
        actor_id=actor.user_id,
        actor_role=actor.role,
        notes=_text(notes),
        request_id=request_id,
        occurred_at=at,
        decision_id=state.decision_id,
        ordinal=ordinal,
    )
