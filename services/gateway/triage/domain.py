"""The exception lifecycle (SPEC §7), pure: commands return events, state is folded from events.

    new → acknowledged → in_progress → resolved | waived
    resolved | waived → reopened → in_progress

Waiving a `hard` exception is four-eyes: it waits in `waiver_pending` until a different user with
role `senior_analyst` or `admin` approves (→ waived) or rejects (→ in_progress) it. `assign` and
`comment` keep the status. The projector folds with `evolve`, which re-checks every rule, so an
event that lost a race against another one is recorded as rejected instead of applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import singledispatch
from typing import Literal
from uuid import UUID

from contracts.triage import (
    ExceptionAcknowledged,
    ExceptionAssigned,
    ExceptionCommented,
    ExceptionReopened,
    ExceptionResolved,
    ExceptionStarted,
    ExceptionStatus,
    ExceptionWaived,
    ExceptionWaiverApproved,
    ExceptionWaiverRejected,
    ExceptionWaiverRequested,
    TriageEvent,
)

Action = Literal[
    "acknowledge",
    "assign",
    "start",
    "comment",
    "resolve",
    "waive",
    "reopen",
    "approve-waiver",
    "reject-waiver",
]
ACTIONS: tuple[Action, ...] = (
    "acknowledge",
    "assign",
    "start",
    "comment",
    "resolve",
    "waive",
    "reopen",
    "approve-waiver",
    "reject-waiver",
)
APPROVER_ROLES = frozenset({"senior_analyst", "admin"})
WORKER_ROLES = frozenset({"analyst", "senior_analyst", "admin"})
COMMENTER_ROLES = WORKER_ROLES | {"sales_team"}
CLOSED: frozenset[ExceptionStatus] = frozenset({"resolved", "waived"})
ALL_STATUSES: frozenset[ExceptionStatus] = frozenset(
    {"new", "acknowledged", "in_progress", "waiver_pending", "resolved", "waived", "reopened"}
)

# The statuses each action may start from.
ALLOWED_FROM: dict[Action, frozenset[ExceptionStatus]] = {
    "acknowledge": frozenset({"new"}),
    "assign": ALL_STATUSES - CLOSED,
    "start": frozenset({"acknowledged", "reopened"}),
    "comment": ALL_STATUSES,
    "resolve": frozenset({"in_progress"}),
    "waive": frozenset({"in_progress"}),
    "reopen": CLOSED,
    "approve-waiver": frozenset({"waiver_pending"}),
    "reject-waiver": frozenset({"waiver_pending"}),
}
NOTES_REQUIRED: frozenset[Action] = frozenset({"comment", "resolve", "waive"})


class TriageError(Exception):
    """An action the lifecycle does not allow."""


class InvalidTransition(TriageError):
    """The action cannot start from the exception's current status (HTTP 409)."""

    def __init__(self, action: str, status: ExceptionStatus) -> None:
        super().__init__(f"Cannot {action} an exception whose status is {status}")
        self.action = action
        self.status = status


class NotPermitted(TriageError):
    """The actor may not take this action (HTTP 403): wrong role, or approving one's own waiver."""


class NotesRequired(TriageError):
    """The action needs `notes` (why) and got none (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class ExceptionRef:
    """The exception an action is about, as the read model knows it."""

    exception_id: UUID
    loan_id: UUID
    run_id: UUID
    exception_type: str
    severity: str


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts."""

    user_id: UUID
    role: str


@dataclass(frozen=True, slots=True)
class TriageState:
    """An exception's lifecycle state, folded from its events."""

    status: ExceptionStatus = "new"
    assignee: UUID | None = None
    waiver_requested_by: UUID | None = None
    actions: int = 0
    updated_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """One action by one actor at one time, with its why."""

    action: Action
    actor: Actor
    at: datetime
    event_id: UUID
    notes: str | None = None
    assignee: UUID | None = None
    request_id: str | None = None


def decide(ref: ExceptionRef, state: TriageState, command: Command) -> TriageEvent:
    """The event the command produces on this exception, or the TriageError that forbids it."""
    action = command.action
    _check_role(action, command.actor)
    if state.status not in ALLOWED_FROM[action]:
        raise InvalidTransition(action, state.status)
    notes = (command.notes or "").strip() or None
    if action in NOTES_REQUIRED and notes is None:
        raise NotesRequired(f"{action} requires notes saying why")
    _check_second_person(action, state, command.actor.user_id)
    if action == "assign" and command.assignee is None:
        raise NotesRequired("assign requires an assignee")
    common = {
        "event_id": command.event_id,
        "exception_id": ref.exception_id,
        "loan_id": ref.loan_id,
        "run_id": ref.run_id,
        "exception_type": ref.exception_type,
        "actor_id": command.actor.user_id,
        "actor_role": command.actor.role,
        "notes": notes,
        "request_id": command.request_id,
        "occurred_at": command.at,
    }
    if action == "assign":
        return ExceptionAssigned(**common, assignee=command.assignee)
    if action == "waive" and ref.severity == "hard":
        return ExceptionWaiverRequested(**common)
    return _EVENT_OF[action](**common)


_EVENT_OF: dict[Action, type[TriageEvent]] = {
    "acknowledge": ExceptionAcknowledged,
    "start": ExceptionStarted,
    "comment": ExceptionCommented,
    "resolve": ExceptionResolved,
    "waive": ExceptionWaived,
    "reopen": ExceptionReopened,
    "approve-waiver": ExceptionWaiverApproved,
    "reject-waiver": ExceptionWaiverRejected,
}
ACTION_OF_EVENT: dict[str, Action] = {
    "exception.acknowledged": "acknowledge",
    "exception.assigned": "assign",
    "exception.started": "start",
    "exception.commented": "comment",
    "exception.resolved": "resolve",
    "exception.waived": "waive",
    "exception.waiver_requested": "waive",
    "exception.waiver_approved": "approve-waiver",
    "exception.waiver_rejected": "reject-waiver",
    "exception.reopened": "reopen",
}


def _check_role(action: Action, actor: Actor) -> None:
    if action in ("approve-waiver", "reject-waiver"):
        if actor.role not in APPROVER_ROLES:
            raise NotPermitted("Approving a waiver requires role senior_analyst or admin")
    elif action == "comment":
        if actor.role not in COMMENTER_ROLES:
            raise NotPermitted(f"Role {actor.role} may not comment")
    elif actor.role not in WORKER_ROLES:
        raise NotPermitted(f"Role {actor.role} may only read and comment on exceptions")


def _check_second_person(action: Action, state: TriageState, actor_id: UUID) -> None:
    if action in ("approve-waiver", "reject-waiver") and state.waiver_requested_by == actor_id:
        raise NotPermitted("A waiver needs a second person: you cannot decide your own")


def evolve(state: TriageState, event: TriageEvent) -> TriageState:
    """The state after `event`; TriageError if the event is not allowed from `state`."""
    action = ACTION_OF_EVENT[event.event_type]  # type: ignore[attr-defined]
    actor = Actor(event.actor_id, event.actor_role)
    _check_role(action, actor)
    if state.status not in ALLOWED_FROM[action]:
        raise InvalidTransition(action, state.status)
    _check_second_person(action, state, event.actor_id)
    changed = _apply(event, state)
    return replace(changed, actions=state.actions + 1, updated_at=event.occurred_at)


@singledispatch
def _apply(_event: TriageEvent, state: TriageState) -> TriageState:
    """Events that keep the status (comment)."""
    return state


@_apply.register
def _(_event: ExceptionAcknowledged, state: TriageState) -> TriageState:
    return replace(state, status="acknowledged")


@_apply.register
def _(event: ExceptionAssigned, state: TriageState) -> TriageState:
    return replace(state, assignee=event.assignee)


@_apply.register
def _(_event: ExceptionStarted, state: TriageState) -> TriageState:
    return replace(state, status="in_progress", closed_at=None)


@_apply.register
def _(event: ExceptionResolved, state: TriageState) -> TriageState:
    return replace(state, status="resolved", closed_at=event.occurred_at)


@_apply.register
def _(event: ExceptionWaived, state: TriageState) -> TriageState:
    return replace(state, status="waived", closed_at=event.occurred_at)


@_apply.register
def _(event: ExceptionWaiverRequested, state: TriageState) -> TriageState:
    return replace(state, status="waiver_pending", waiver_requested_by=event.actor_id)


@_apply.register
def _(event: ExceptionWaiverApproved, state: TriageState) -> TriageState:
    return replace(state, status="waived", waiver_requested_by=None, closed_at=event.occurred_at)


@_apply.register
def _(_event: ExceptionWaiverRejected, state: TriageState) -> TriageState:
    return replace(state, status="in_progress", waiver_requested_by=None)


@_apply.register
def _(_event: ExceptionReopened, state: TriageState) -> TriageState:
    return replace(state, status="reopened", closed_at=None)


def fold(events: Iterable[TriageEvent], state: TriageState | None = None) -> TriageState:
    """The state after every event in order (events that break a rule are skipped)."""
    current = state or TriageState()
    for event in events:
        try:
            current = evolve(current, event)
        except TriageError:
            continue
    return current
