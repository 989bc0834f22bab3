"""Credit review, pure: the priority formula, opening a case, the case lifecycle, the queue and
similar loans (SPEC §8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from contracts.ids import review_case_id
from contracts.reviews import Condition, ReviewCaseOpened, ReviewDecisionRecorded
from services.gateway.review.decisions import (
    DecisionRequest,
    decide_case,
    fulfil,
    leaning,
    override_review,
)
from services.gateway.review.domain import (
    MAX_ACTIVE,
    Actor,
    CaseRef,
    CaseState,
    Command,
    InvalidRequest,
    InvalidTransition,
    NotPermitted,
    ReviewError,
    WorkloadExceeded,
    decide,
    evolve,
)
from services.gateway.review.opening import ScoredLoan, open_case
from services.gateway.review.priority import (
    PriorityPolicy,
    closeness,
    level,
    parse_amount,
    priority_points,
)
from services.gateway.review.queue import QueuedCase, ordered, rank, sla_state, summarise
from services.gateway.review.similar import distance, nearest

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
POLICY = PriorityPolicy()
ANALYST = Actor(uuid4(), "analyst")
OTHER = Actor(uuid4(), "analyst")
SENIOR = Actor(uuid4(), "senior_analyst")
SALES = Actor(uuid4(), "sales_team")
REF = CaseRef(uuid4(), uuid4(), uuid4())


def none_active(_user: UUID) -> int:
    return 0


def command(action: str, actor: Actor, assignee: UUID | None = None) -> Command:
    return Command(action, actor, NOW, uuid4(), assignee)  # type: ignore[arg-type]


def opened() -> ReviewCaseOpened:
    loan = ScoredLoan(REF.loan_id, REF.run_id, 3, "LN1", "7", 700, "borderline_score", "1", NOW)
    return open_case(loan, POLICY, NOW)


# Priority


def test_closeness_is_one_on_a_threshold_and_zero_half_a_band_away() -> None:
    assert closeness(850, POLICY) == 1
    assert closeness(600, POLICY) == 1
    assert closeness(725, POLICY) == 0
    assert closeness(1000, POLICY) == 0


def test_a_score_near_a_threshold_outranks_one_in_the_middle_of_the_band() -> None:
    near = priority_points(840, None, NOW, NOW, 0, POLICY)
    middle = priority_points(725, None, NOW, NOW, 0, POLICY)
    assert near == 46 and middle == 0


def test_a_larger_loan_ranks_higher_up_to_the_cap() -> None:
    small = priority_points(725, Decimal(300_000), NOW, NOW, 0, POLICY)
    large = priority_points(725, Decimal(3_000_000), NOW, NOW, 0, POLICY)
    huge = priority_points(725, Decimal(9_000_000), NOW, NOW, 0, POLICY)
    assert (small, large, huge) == (3, 30, 30)


def test_an_older_case_ranks_higher_and_age_counts_fully_at_the_sla() -> None:
    fresh = priority_points(725, None, NOW, NOW, 0, POLICY)
    half = priority_points(725, None, NOW - timedelta(hours=4), NOW, 0, POLICY)
    old = priority_points(725, None, NOW - timedelta(hours=40), NOW, 0, POLICY)
    assert (fresh, half, old) == (0, 10, 20)


def test_each_release_lowers_the_priority_by_ten_points_but_not_below_zero() -> None:
    base = priority_points(850, Decimal(3_000_000), NOW, NOW, 0, POLICY)
    assert base == 80
    assert priority_points(850, Decimal(3_000_000), NOW, NOW, 1, POLICY) == 70
    assert priority_points(725, None, NOW, NOW, 3, POLICY) == 0


def test_priority_levels_split_at_75_50_and_25_points() -> None:
    assert [level(p) for p in (100, 75, 74, 50, 49, 25, 24, 0)] == [
        "critical",
        "critical",
        "high",
        "high",
        "medium",
        "medium",
        "low",
        "low",
    ]


def test_an_unreadable_or_negative_amount_counts_as_missing() -> None:
    assert parse_amount("=HYPERLINK(1)") is None
    assert parse_amount("-5") is None
    assert parse_amount("NaN") is None
    assert parse_amount("250000.00") == Decimal("250000.00")


# Opening


def test_opening_a_case_twice_gives_the_same_ids_so_replays_do_not_duplicate() -> None:
    first, again = opened(), opened()
    assert first.event_id == again.event_id
    assert first.case_id == review_case_id(REF.loan_id)
    assert first.sla_deadline == NOW + timedelta(hours=8)
    assert first.actor_id is None and first.actor_role == "system"


def test_a_second_open_of_the_same_case_is_rejected_by_the_fold() -> None:
    state = evolve(None, opened())
    assert state.status == "pending"
    with pytest.raises(InvalidTransition):
        evolve(state, opened())


# Lifecycle


def test_an_analyst_assigns_a_case_to_themselves_starts_and_releases_it() -> None:
    state = evolve(None, opened())
    take = command("assign", ANALYST, ANALYST.user_id)
    assigned = evolve(state, decide(REF, state, take, none_active))
    assert (assigned.status, assigned.assignee) == ("assigned", ANALYST.user_id)
    started = evolve(assigned, decide(REF, assigned, command("start", ANALYST), none_active))
    assert started.status == "in_progress"
    released = evolve(started, decide(REF, started, command("release", ANALYST), none_active))
    assert (released.status, released.assignee, released.releases) == ("pending", None, 1)


def test_an_analyst_may_not_assign_a_case_to_someone_else() -> None:
    with pytest.raises(NotPermitted):
        decide(REF, CaseState(), command("assign", ANALYST, OTHER.user_id), none_active)


def test_a_senior_analyst_assigns_and_reassigns_to_anyone() -> None:
    event = decide(REF, CaseState(), command("assign", SENIOR, OTHER.user_id), none_active)
    assigned = evolve(CaseState(), event)
    again = decide(REF, assigned, command("assign", SENIOR, ANALYST.user_id), none_active)
    assert evolve(assigned, again).assignee == ANALYST.user_id


def test_only_the_assignee_starts_a_case() -> None:
    state = CaseState(status="assigned", assignee=ANALYST.user_id)
    with pytest.raises(NotPermitted):
        decide(REF, state, command("start", OTHER), none_active)


def test_starting_an_unassigned_case_is_an_invalid_transition() -> None:
    with pytest.raises(InvalidTransition):
        decide(REF, CaseState(), command("start", ANALYST), none_active)


def test_a_sales_user_may_not_work_on_cases() -> None:
    with pytest.raises(NotPermitted):
        decide(REF, CaseState(), command("assign", SALES, SALES.user_id), none_active)


def test_nobody_holds_more_than_five_active_cases() -> None:
    def full(_user: UUID) -> int:
        return MAX_ACTIVE

    with pytest.raises(WorkloadExceeded):
        decide(REF, CaseState(), command("assign", ANALYST, ANALYST.user_id), full)
    # Reassigning a case its assignee already holds does not count twice.
    mine = CaseState(status="assigned", assignee=ANALYST.user_id)
    assert decide(REF, mine, command("assign", SENIOR, ANALYST.user_id), full)


def test_an_action_on_a_case_never_opened_is_rejected() -> None:
    event = decide(REF, CaseState(), command("assign", ANALYST, ANALYST.user_id), none_active)
    with pytest.raises(ReviewError):
        evolve(None, event)


# Queue


def case(score: int, hours_left: float, status: str = "pending") -> QueuedCase:
    deadline = NOW + timedelta(hours=hours_left)
    return QueuedCase(uuid4(), status, score, None, NOW, deadline - timedelta(hours=8), deadline, 0)  # type: ignore[arg-type]


def test_sla_state_warns_two_hours_before_the_deadline_and_breaches_at_it() -> None:
    deadline = NOW + timedelta(hours=2)
    assert sla_state("pending", deadline + timedelta(seconds=1), NOW, Decimal(2)) == "ok"
    assert sla_state("pending", deadline, NOW, Decimal(2)) == "approaching"
    assert sla_state("assigned", NOW, NOW, Decimal(2)) == "breached"
    assert sla_state("decided", NOW, NOW, Decimal(2)) == "met"


def test_the_queue_sorts_by_priority_creation_or_deadline() -> None:
    near, middle, urgent = case(845, 7), case(725, 5), case(725, 1)
    ranked = [rank(c, NOW, POLICY, Decimal(2)) for c in (middle, near, urgent)]
    assert [r.case for r in ordered(ranked, "priority")][0] == near
    assert [r.case for r in ordered(ranked, "deadline")] == [urgent, middle, near]
    assert [r.case for r in ordered(ranked, "created")] == [urgent, middle, near]


def test_the_summary_counts_open_cases_by_status_sla_and_priority() -> None:
    cases = [case(845, 7), case(725, 1, "assigned"), case(725, -1, "in_progress")]
    summary = summarise([rank(c, NOW, POLICY, Decimal(2)) for c in cases])
    assert (summary.total_pending, summary.total_assigned, summary.total_in_progress) == (1, 1, 1)
    assert (summary.approaching_sla, summary.breached_sla) == (1, 1)
    assert sum(summary.by_priority.values()) == 3


# Similar loans


def test_the_same_inputs_are_at_distance_zero_and_nearest_come_first() -> None:
    base = {
        "credit_score": "700",
        "ltv_ratio": "80",
        "dti_ratio": "35",
        "note_rate": "7",
        "loan_amount": "200000",
        "appraisal_to_price": "1.0",
        "property_type": "sfr",
        "occupancy_status": "primary",
        "loan_purpose": "purchase",
    }
    close = {**base, "credit_score": "710"}
    far = {**base, "credit_score": "550", "property_type": "condo"}
    assert distance(base, base) == 0
    assert [name for name, _ in nearest(base, [("far", far), ("close", close)], 1)] == ["close"]


def test_a_missing_input_counts_as_a_difference() -> None:
    base = {"credit_score": "700"}
    assert distance(base, {"credit_score": None}) > distance(base, {"credit_score": "720"})


# Decisions


def in_progress(assignee: Actor = ANALYST) -> CaseState:
    return CaseState(status="in_progress", assignee=assignee.user_id, started_at=NOW)


def decision(
    outcome: str, score: int = 800, actor: Actor = ANALYST, **fields: object
) -> ReviewDecisionRecorded:
    request = DecisionRequest(outcome=outcome, **fields)  # type: ignore[arg-type]
    later = NOW + timedelta(minutes=12)
    return decide_case(REF, in_progress(), 4, score, actor, request, POLICY, later, uuid4())


JUSTIFIED = "The borrower has twelve years of verified reserves and a co-signer on file."


def test_the_model_leans_approve_from_the_middle_of_the_band_up() -> None:
    assert leaning(725, POLICY) == "approve"
    assert leaning(724, POLICY) == "decline"


def test_an_approval_with_terms_in_line_with_the_model_is_final_with_its_review_time() -> None:
    event = decision("approve", terms="30y fixed at 6.875%")
    assert (event.decision_type, event.is_override, event.review_time_seconds) == (
        "analyst_approve",
        False,
        720,
    )
    assert evolve(in_progress(), event).status == "decided"


def test_each_outcome_requires_its_terms_conditions_or_reasoning() -> None:
    with pytest.raises(InvalidRequest):
        decision("approve")
    with pytest.raises(InvalidRequest):
        decision("approve_with_conditions")
    with pytest.raises(InvalidRequest):
        decision("decline", score=650)
    with pytest.raises(InvalidRequest):
        decision(
            "approve", terms="x", conditions=[Condition(condition_type="other", description="y")]
        )


def test_a_decision_against_the_model_needs_a_fifty_character_justification() -> None:
    with pytest.raises(InvalidRequest, match="50"):
        decision("decline", reasoning="thin file", justification="too short")
    event = decision("decline", reasoning="thin file", justification=JUSTIFIED)
    assert event.is_override and event.model_leaning == "approve"
    assert event.decision_type == "analyst_decline"
    assert evolve(in_progress(), event).status == "override_pending"


def test_only_the_assignee_decides_and_only_a_case_in_progress() -> None:
    with pytest.raises(NotPermitted):
        decision("approve", terms="t", actor=OTHER)
    with pytest.raises(InvalidTransition):
        decide_case(
            REF,
            CaseState(status="assigned", assignee=ANALYST.user_id),
            4,
            800,
            ANALYST,
            DecisionRequest(outcome="approve", terms="t"),
            POLICY,
            NOW,
            uuid4(),
        )


def overridden() -> tuple[CaseState, ReviewDecisionRecorded]:
    event = decision("decline", reasoning="thin file", justification=JUSTIFIED)
    return evolve(in_progress(), event), event


def test_an_override_needs_a_different_senior_analyst_or_admin() -> None:
    state, _ = overridden()
    with pytest.raises(NotPermitted):
        override_review(REF, state, OTHER, True, None, NOW, uuid4())
    self_senior = Actor(ANALYST.user_id, "senior_analyst")
    with pytest.raises(NotPermitted):
        override_review(REF, state, self_senior, True, None, NOW, uuid4())
    approved = override_review(REF, state, SENIOR, True, None, NOW, uuid4())
    assert evolve(state, approved).status == "decided"


def test_a_rejected_override_reverts_the_case_to_its_analyst_and_needs_notes() -> None:
    state, _ = overridden()
    with pytest.raises(InvalidRequest):
        override_review(REF, state, SENIOR, False, " ", NOW, uuid4())
    rejected = override_review(REF, state, SENIOR, False, "Reserves not verified", NOW, uuid4())
    after = evolve(state, rejected)
    assert (after.status, after.assignee, after.decision_id) == (
        "in_progress",
        ANALYST.user_id,
        None,
    )


def test_conditions_are_fulfilled_once_each_after_a_final_approval() -> None:
    conditions = [
        Condition(condition_type="documentation", description="Two pay stubs"),
        Condition(condition_type="reduced_amount", description="Max $400,000"),
    ]
    event = decision("approve_with_conditions", conditions=conditions)
    state = evolve(in_progress(), event)
    first = fulfil(REF, state, ANALYST, 2, None, NOW, uuid4())
    state = evolve(state, first)
    assert state.fulfilled == (2,)
    with pytest.raises(InvalidTransition):
        fulfil(REF, state, ANALYST, 2, None, NOW, uuid4())
    with pytest.raises(InvalidRequest):
        fulfil(REF, state, ANALYST, 3, None, NOW, uuid4())
    with pytest.raises(NotPermitted):
        fulfil(REF, state, SALES, 1, None, NOW, uuid4())
