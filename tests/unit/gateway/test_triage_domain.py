"""The exception lifecycle, pure: every transition, the four-eyes waiver, the fold."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from contracts.ids import exception_id
from contracts.triage import ExceptionStatus, ExceptionWaiverRequested
from services.gateway.triage.domain import (
    ACTIONS,
    ALLOWED_FROM,
    Action,
    Actor,
    Command,
    ExceptionRef,
    InvalidTransition,
    NotesRequired,
    NotPermitted,
    TriageState,
    decide,
    evolve,
    fold,
)

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LOAN = UUID("00000000-0000-0000-0000-000000000001")
ANALYST = Actor(UUID(int=10), "analyst")
SENIOR = Actor(UUID(int=11), "senior_analyst")
ADMIN = Actor(UUID(int=12), "admin")
SALES = Actor(UUID(int=13), "sales_team")
ASSIGNEE = UUID(int=20)


def ref(severity: str = "soft") -> ExceptionRef:
    return ExceptionRef(exception_id(LOAN, "dti_ratio"), LOAN, UUID(int=1), "dti_ratio", severity)


def command(action: Action, actor: Actor = ANALYST, notes: str | None = "why") -> Command:
    return Command(action, actor, AT, uuid4(), notes=notes, assignee=ASSIGNEE)


def run(
    actions: list[tuple[Action, Actor]], severity: str = "soft", state: TriageState | None = None
) -> TriageState:
    """Decide and apply each action in turn, as the API and the projector do."""
    current = state or TriageState()
    for action, actor in actions:
        current = evolve(current, decide(ref(severity), current, command(action, actor)))
    return current


EXPECTED: dict[tuple[ExceptionStatus, Action], ExceptionStatus] = {
    ("new", "acknowledge"): "acknowledged",
    ("acknowledged", "start"): "in_progress",
    ("reopened", "start"): "in_progress",
    ("in_progress", "resolve"): "resolved",
    ("in_progress", "waive"): "waived",
    ("resolved", "reopen"): "reopened",
    ("waived", "reopen"): "reopened",
}
STATES: tuple[ExceptionStatus, ...] = (
    "new",
    "acknowledged",
    "in_progress",
    "waiver_pending",
    "resolved",
    "waived",
    "reopened",
)


@pytest.mark.parametrize(("start", "action"), list(EXPECTED))
def test_each_lifecycle_action_moves_the_exception_to_its_next_status(
    start: ExceptionStatus, action: Action
) -> None:
    after = run([(action, ANALYST)], state=TriageState(status=start))
    assert after.status == EXPECTED[(start, action)]
    assert after.actions == 1
    assert after.updated_at == AT


@pytest.mark.parametrize(
    ("start", "action"),
    [(s, a) for s in STATES for a in ACTIONS if s not in ALLOWED_FROM[a]],
)
def test_an_action_from_a_status_it_cannot_start_from_names_the_current_status(
    start: ExceptionStatus, action: Action
) -> None:
    with pytest.raises(InvalidTransition, match=f"status is {start}$"):
        decide(ref(), TriageState(status=start), command(action, SENIOR))


def test_the_whole_path_new_to_resolved_to_reopened_to_resolved_again() -> None:
    state = run(
        [
            ("acknowledge", ANALYST),
            ("assign", ANALYST),
            ("start", ANALYST),
            ("comment", ANALYST),
            ("resolve", ANALYST),
            ("reopen", ANALYST),
            ("start", ANALYST),
            ("resolve", ANALYST),
        ]
    )
    assert state.status == "resolved"
    assert state.assignee == ASSIGNEE
    assert state.closed_at == AT
    assert state.actions == 8


def test_assign_and_comment_keep_the_status() -> None:
    state = run([("acknowledge", ANALYST), ("assign", ANALYST), ("comment", ANALYST)])
    assert state.status == "acknowledged"
    assert state.assignee == ASSIGNEE


def test_a_closed_exception_cannot_be_assigned() -> None:
    with pytest.raises(InvalidTransition, match="resolved"):
        decide(ref(), TriageState(status="resolved"), command("assign"))


@pytest.mark.parametrize("action", ["comment", "resolve", "waive"])
def test_comment_resolve_and_waive_require_notes(action: Action) -> None:
    with pytest.raises(NotesRequired):
        decide(ref(), TriageState(status="in_progress"), command(action, notes="   "))


def test_waiving_a_soft_exception_needs_one_person() -> None:
    state = run([("acknowledge", ANALYST), ("start", ANALYST), ("waive", ANALYST)])
    assert state.status == "waived"


def test_waiving_a_hard_exception_waits_for_a_second_person() -> None:
    pending = run([("acknowledge", ANALYST), ("start", ANALYST), ("waive", ANALYST)], "hard")
    assert pending.status == "waiver_pending"
    assert pending.waiver_requested_by == ANALYST.user_id
    assert run([("approve-waiver", SENIOR)], "hard", pending).status == "waived"
    assert run([("approve-waiver", ADMIN)], "hard", pending).status == "waived"


def test_a_rejected_waiver_goes_back_to_in_progress() -> None:
    pending = run([("acknowledge", ANALYST), ("start", ANALYST), ("waive", ANALYST)], "hard")
    rejected = run([("reject-waiver", SENIOR)], "hard", pending)
    assert rejected.status == "in_progress"
    assert rejected.waiver_requested_by is None


def test_nobody_approves_their_own_waiver_not_even_a_senior_analyst() -> None:
    pending = run([("acknowledge", SENIOR), ("start", SENIOR), ("waive", SENIOR)], "hard")
    with pytest.raises(NotPermitted, match="second person"):
        decide(ref("hard"), pending, command("approve-waiver", SENIOR))
    with pytest.raises(NotPermitted, match="second person"):
        decide(ref("hard"), pending, command("reject-waiver", SENIOR))


def test_an_analyst_cannot_approve_a_waiver() -> None:
    pending = run([("acknowledge", SENIOR), ("start", SENIOR), ("waive", SENIOR)], "hard")
    with pytest.raises(NotPermitted, match="senior_analyst or admin"):
        decide(ref("hard"), pending, command("approve-waiver", ANALYST))


@pytest.mark.parametrize("action", [a for a in ACTIONS if a != "comment"])
def test_a_sales_team_user_may_only_comment(action: Action) -> None:
    with pytest.raises(NotPermitted):
        decide(ref(), TriageState(status="in_progress"), command(action, SALES))
    state = run([("comment", SALES)])
    assert state.status == "new"
    assert state.actions == 1


def test_the_fold_skips_an_event_that_lost_a_race() -> None:
    first = decide(ref(), TriageState(), command("acknowledge"))
    second = decide(ref(), TriageState(), command("acknowledge", SENIOR))
    state = fold([first, second])
    assert state.status == "acknowledged"
    assert state.actions == 1


def test_the_fold_rejects_a_self_approval_published_behind_the_apis_back() -> None:
    pending = run([("acknowledge", ANALYST), ("start", ANALYST), ("waive", ANALYST)], "hard")
    request = ExceptionWaiverRequested(
        event_id=uuid4(),
        exception_id=ref().exception_id,
        loan_id=LOAN,
        run_id=UUID(int=1),
        exception_type="dti_ratio",
        actor_id=SENIOR.user_id,
        actor_role="senior_analyst",
        notes="why",
        occurred_at=AT + timedelta(minutes=1),
    )
    approval = decide(ref("hard"), pending, command("approve-waiver", ADMIN)).model_copy(
        update={"actor_id": SENIOR.user_id}
    )
    with pytest.raises(NotPermitted):
        evolve(evolve(TriageState(status="in_progress"), request), approval)


def test_the_exception_id_is_uuid5_of_loan_and_type() -> None:
    from uuid import uuid5

    from contracts.ids import NS

    assert exception_id(LOAN, "dti_ratio") == uuid5(NS, f"{LOAN}/dti_ratio")
