"""The review case lifecycle (SPEC §8), pure: commands return events, state is folded from events.

    pending → assigned → in_progress → decided | override_pending
    assigned | in_progress → pending (release)
    override_pending → decided (override approved) | in_progress (override rejected)

An analyst may take a case for themselves; a `senior_analyst` or `admin` may assign it to anyone
and reassign it. Nobody is given more than `MAX_ACTIVE` active (assigned or in progress) cases.
Only the assignee starts a case; the assignee or a senior releases it. The projector folds with
`evolve`, which re-checks every rule of the case itself, so of two actions on one case that raced
only the first applies. The workload limit spans cases, whose events sit on different partitions
and may be read in another order by a rebuild, so only `decide` checks it: the fold must give the
same result on every replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from uuid import UUID

from contracts.reviews import (
    SYSTEM_ROLE,
    CaseStatus,
    ReviewCaseAssigned,
    ReviewCaseEscalated,
    ReviewCaseOpened,
    ReviewCaseReleased,
    ReviewCaseStarted,
    ReviewConditionFulfilled,
    ReviewDecisionRecorded,
    ReviewEvent,
    ReviewOverrideApproved,
    ReviewOverrideRejected,
    ReviewSlaBreached,
    ReviewSlaWarned,
)

Action = Literal["assign", "start", "release"]
ACTIONS: tuple[Action, ...] = ("assign", "start", "release")
MAX_ACTIVE = 5
SENIOR_ROLES = frozenset({"senior_analyst", "admin"})
REVIEWER_ROLES = frozenset({"analyst", "senior_analyst", "admin"})
ACTIVE: frozenset[CaseStatus] = frozenset({"assigned", "in_progress"})
OPEN_STATUSES: frozenset[CaseStatus] = frozenset({"pending", "assigned", "in_progress"})
ALLOWED_FROM: dict[Action, frozenset[CaseStatus]] = {
    "assign": frozenset({"pending", "assigned"}),
    "start": frozenset({"assigned"}),
    "release": ACTIVE,
}


class ReviewError(Exception):
    """An action the case lifecycle does not allow."""


class InvalidTransition(ReviewError):
    """The action cannot start from the case's status (HTTP 409)."""

    def __init__(self, action: str, status: CaseStatus) -> None:
        super().__init__(f"Cannot {action} a review case whose status is {status}")
        self.action = action
        self.status = status


class NotPermitted(ReviewError):
    """The actor may not take this action on this case (HTTP 403)."""


class WorkloadExceeded(ReviewError):
    """The assignee already holds the most active cases allowed (HTTP 409)."""


class InvalidRequest(ReviewError):
    """The action is missing what it needs (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts."""

    user_id: UUID
    role: str


@dataclass(frozen=True, slots=True)
class CaseRef:
    """The case an action is about."""

    case_id: UUID
    loan_id: UUID
    run_id: UUID


@dataclass(frozen=True, slots=True)
class CaseState:
    """A case's lifecycle state, folded from its events."""

    status: CaseStatus = "pending"
    assignee: UUID | None = None
    releases: int = 0
    actions: int = 0
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    decision_id: UUID | None = None
    decided_by: UUID | None = None
    decided_at: datetime | None = None
    conditions: int = 0
    fulfilled: tuple[int, ...] = ()
    sla_warned_at: datetime | None = None
    sla_breached_at: datetime | None = None
    escalated_at: datetime | None = None


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


def check_decision(state: CaseState, actor: Actor) -> None:
    """Only the assignee decides a case in progress."""
    if state.status != "in_progress":
        raise InvalidTransition("decide", state.status)
    if state.assignee != actor.user_id:
        raise NotPermitted("Only the case's assignee can decide it")


def check_override_review(state: CaseState, actor: Actor, decision_id: UUID) -> None:
    """A different senior analyst or admin approves or rejects a pending override."""
    if actor.role not in SENIOR_ROLES:
        raise NotPermitted("Approving an override requires role senior_analyst or admin")
    if state.status != "override_pending" or state.decision_id != decision_id:
        raise InvalidTransition("review the override of", state.status)
    if state.decided_by == actor.user_id:
        raise NotPermitted("An override needs a second person: you cannot approve your own")


def check_fulfilment(state: CaseState, actor: Actor, decision_id: UUID, ordinal: int) -> None:
    """A condition of the case's final approval, not yet fulfilled, by a reviewer."""
    if actor.role not in {"analyst", *SENIOR_ROLES}:
        raise NotPermitted(f"Role {actor.role} may not fulfil conditions")
    if state.status != "decided" or state.decision_id != decision_id:
        raise InvalidTransition("fulfil a condition of", state.status)
    if not 1 <= ordinal <= state.conditions:
        raise InvalidRequest(f"The decision has no condition {ordinal}")
    if ordinal in state.fulfilled:
        raise InvalidTransition("fulfil an already fulfilled condition of", state.status)


ActiveCount = Callable[[UUID], int]
"""How many active cases a user holds right now."""


def _check(action: Action, state: CaseState, actor: Actor, assignee: UUID | None) -> None:
    if actor.role not in REVIEWER_ROLES:
        raise NotPermitted(f"Role {actor.role} may not work on review cases")
    if state.status not in ALLOWED_FROM[action]:
        raise InvalidTransition(action, state.status)
    senior = actor.role in SENIOR_ROLES
    if action == "assign":
        if assignee is None:
            raise InvalidRequest("assign requires an assignee")
        if assignee != actor.user_id and not senior:
            raise NotPermitted("An analyst may only assign a case to themselves")
        if state.status == "assigned" and not senior:
            raise NotPermitted("Reassigning a case requires role senior_analyst or admin")
    elif action == "start" and state.assignee != actor.user_id:
        raise NotPermitted("Only the case's assignee can start it")
    elif action == "release" and state.assignee != actor.user_id and not senior:
        raise NotPermitted("Only the assignee or a senior analyst can release the case")


def _check_workload(state: CaseState, assignee: UUID, active: ActiveCount) -> None:
    if state.assignee != assignee and active(assignee) >= MAX_ACTIVE:
        raise WorkloadExceeded(f"The assignee already holds {MAX_ACTIVE} active review cases")


def decide(ref: CaseRef, state: CaseState, command: Command, active: ActiveCount) -> ReviewEvent:
    """The event the command produces on this case, or the ReviewError that forbids it."""
    _check(command.action, state, command.actor, command.assignee)
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


def evolve(state: CaseState | None, event: ReviewEvent) -> CaseState:
    """The state after `event`; ReviewError when the event is not allowed from `state`."""
    if isinstance(event, ReviewCaseOpened):
        if state is not None:
            raise InvalidTransition("open", state.status)
        return CaseState(updated_at=event.occurred_at)
    if state is None:
        raise ReviewError("No review case was opened for this event")
    if event.actor_id is None and event.actor_role == SYSTEM_ROLE:
        return replace(_evolve_by_system(state, event), updated_at=event.occurred_at)
    actor = Actor(event.actor_id, event.actor_role) if event.actor_id else None
    if actor is None:
        raise NotPermitted("A review action needs a person")
    if isinstance(event, ReviewCaseAssigned):
        _check("assign", state, actor, event.assignee)
        changed = replace(
            state, status="assigned", assignee=event.assignee, assigned_at=event.occurred_at
        )
    elif isinstance(event, ReviewCaseStarted):
        _check("start", state, actor, None)
        changed = replace(state, status="in_progress", started_at=event.occurred_at)
    elif isinstance(event, ReviewCaseReleased):
        _check("release", state, actor, None)
        changed = replace(
            state,
            status="pending",
            assignee=None,
            assigned_at=None,
            started_at=None,
            releases=state.releases + 1,
        )
    elif isinstance(event, ReviewDecisionRecorded):
        check_decision(state, actor)
        changed = replace(
            state,
            status="override_pending" if event.is_override else "decided",
            decision_id=event.decision_id,
            decided_by=actor.user_id,
            decided_at=event.occurred_at,
            conditions=len(event.conditions),
            fulfilled=(),
        )
    elif isinstance(event, ReviewOverrideApproved):
        check_override_review(state, actor, event.decision_id)
        changed = replace(state, status="decided")
    elif isinstance(event, ReviewOverrideRejected):
        check_override_review(state, actor, event.decision_id)
        changed = replace(
            state,
            status="in_progress",
            decision_id=None,
            decided_by=None,
            decided_at=None,
            conditions=0,
        )
    elif isinstance(event, ReviewConditionFulfilled):
        check_fulfilment(state, actor, event.decision_id, event.ordinal)
        changed = replace(state, fulfilled=tuple(sorted((*state.fulfilled, event.ordinal))))
    else:
        raise ReviewError(f"Unknown review event {type(event).__name__}")
    return replace(changed, actions=state.actions + 1, updated_at=event.occurred_at)


def _evolve_by_system(state: CaseState, event: ReviewEvent) -> CaseState:
    """The SLA job's marks (each once, on an open case) and the auto-assign job's assignment
    (of a pending case only: the system never takes a case from a person)."""
    if isinstance(event, ReviewCaseAssigned):
        if state.status != "pending":
            raise InvalidTransition("auto-assign", state.status)
        return replace(
            state,
            status="assigned",
            assignee=event.assignee,
            assigned_at=event.occurred_at,
            actions=state.actions + 1,
        )
    if not isinstance(event, ReviewSlaWarned | ReviewSlaBreached | ReviewCaseEscalated):
        raise NotPermitted("A review action needs a person")
    if state.status not in OPEN_STATUSES:
        raise InvalidTransition(ACTION_OF_EVENT[str(event.event_type)], state.status)
    if isinstance(event, ReviewSlaWarned):
        if state.sla_warned_at is not None:
            raise InvalidTransition("warn again about", state.status)
        return replace(state, sla_warned_at=event.occurred_at)
    if isinstance(event, ReviewSlaBreached):
        if state.sla_breached_at is not None:
            raise InvalidTransition("breach again", state.status)
        return replace(state, sla_breached_at=event.occurred_at)
    if state.escalated_at is not None:
        raise InvalidTransition("escalate again", state.status)
    return replace(state, escalated_at=event.occurred_at)


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
