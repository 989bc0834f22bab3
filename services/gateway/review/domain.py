"""Review commands (SPEC §8), pure: an action on a case in, its event (or the error) out.

The lifecycle itself, the state folded from a case's events and the rules of each transition,
lives in `contracts.review_fold` (reporting folds the same events for the decision tape); this
module adds what only the gateway decides before it publishes: who acts, and the workload limit.
Nobody is given more than `MAX_ACTIVE` active (assigned or in progress) cases. The limit spans
cases, whose events sit on different partitions and may be read in another order by a rebuild,
so only `decide` checks it: the fold must give the same result on every replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from contracts.review_fold import (
    ACTIONS,
    ACTIVE,
    ALLOWED_FROM,
    MAX_ACTIVE,
    OPEN_STATUSES,
    REVIEWER_ROLES,
    SENIOR_ROLES,
    Action,
    Actor,
    CaseState,
    InvalidRequest,
    InvalidTransition,
    NotPermitted,
    ReviewError,
    WorkloadExceeded,
    check_action,
    check_decision,
    check_fulfilment,
    check_override_review,
    evolve,
)
from contracts.reviews import (
    ReviewCaseAssigned,
    ReviewCaseReleased,
    ReviewCaseStarted,
    ReviewEvent,
)

# The lifecycle's names stay importable from here, where they were defined first.
__all__ = [
    "ACTIONS",
    "ACTION_OF_EVENT",
    "ACTIVE",
    "ALLOWED_FROM",
    "Action",
    "ActiveCount",
    "Actor",
    "CaseRef",
    "CaseState",
    "Command",
    "InvalidRequest",
    "InvalidTransition",
    "MAX_ACTIVE",
    "NotPermitted",
    "OPEN_STATUSES",
    "REVIEWER_ROLES",
    "ReviewError",
    "SENIOR_ROLES",
    "WorkloadExceeded",
    "check_decision",
    "check_fulfilment",
    "check_override_review",
    "decide",
    "evolve",
]


@dataclass(frozen=True, slots=True)
class CaseRef:
    """The case an action is about."""

    case_id: UUID
    loan_id: UUID
    run_id: UUID


@dataclass(frozen=True, slots=True)
class Command:
    """One action by one actor at one time."""

    action: Action
    actor: Actor
    at: datetime
    event_id: UUID
    assignee: UUID | None = None
    notes: str | None = None
    request_id: str | None = None


ActiveCount = Callable[[UUID], int]
"""How many active cases a user holds right now."""


def _check_workload(state: CaseState, assignee: UUID, active: ActiveCount) -> None:
    if state.assignee != assignee and active(assignee) >= MAX_ACTIVE:
        raise WorkloadExceeded(f"The assignee already holds {MAX_ACTIVE} active review cases")


def decide(ref: CaseRef, state: CaseState, command: Command, active: ActiveCount) -> ReviewEvent:
    """The event the command produces on this case, or the ReviewError that forbids it."""
    check_action(command.action, state, command.actor, command.assignee)
    common = {
        "event_id": command.event_id,
        "case_id": ref.case_id,
        "loan_id": ref.loan_id,
        "run_id": ref.run_id,
        "actor_id": command.actor.user_id,
        "actor_role": command.actor.role,
        "notes": (command.notes or "").strip() or None,
        "request_id": command.request_id,
        "occurred_at": command.at,
    }
    if command.action == "assign":
        assert command.assignee is not None
        _check_workload(state, command.assignee, active)
        return ReviewCaseAssigned(**common, assignee=command.assignee)
    if command.action == "start":
        return ReviewCaseStarted(**common)
    return ReviewCaseReleased(**common)


ACTION_OF_EVENT: dict[str, str] = {
    "review.case_opened": "open",
    "review.case_assigned": "assign",
    "review.case_started": "start",
    "review.case_released": "release",
    "review.decision_recorded": "decide",
    "review.override_approved": "approve-override",
    "review.override_rejected": "reject-override",
    "review.condition_fulfilled": "fulfil-condition",
    "review.sla_warned": "sla-warning",
    "review.sla_breached": "sla-breach",
    "review.case_escalated": "escalate",
}
