"""Folding a batch of review events onto its cases' stored states (`fold_reviews`)."""

from datetime import timedelta
from typing import Any
from uuid import UUID

from contracts.ids import event_id, review_case_id
from contracts.review_fold import CaseState, evolve
from contracts.reviews import (
    AnyReviewEvent,
    AutoDecision,
    AutoDecisionsRecorded,
    ReviewCaseAssigned,
    ReviewCaseOpened,
    ReviewCaseStarted,
    ReviewDecisionRecorded,
)
from services.reporting.domain import fold_reviews
from tests.factories import OCCURRED_AT, RUN_ID

ANALYST = UUID("aaaaaaaa-0000-4000-8000-000000000001")
STRANGER = UUID("aaaaaaaa-0000-4000-8000-000000000009")
LOANS = (UUID("bbbbbbbb-0000-4000-8000-000000000001"), UUID("bbbbbbbb-0000-4000-8000-000000000002"))


def common(kind: str, loan: UUID, minute: int, actor: UUID | None, role: str) -> dict[str, Any]:
    return {
        "event_id": event_id(kind, loan, minute),
        "case_id": review_case_id(loan),
        "loan_id": loan,
        "run_id": RUN_ID,
        "actor_id": actor,
        "actor_role": role,
        "occurred_at": OCCURRED_AT + timedelta(minutes=minute),
    }


def opened(loan: UUID) -> ReviewCaseOpened:
    return ReviewCaseOpened(
        **common("review.case_opened", loan, 0, None, "system"),
        seq=1,
        model_version="1",
        score=700,
        routing_reason="borderline_score",
        scored_at=OCCURRED_AT,
        priority_score=50,
        priority="medium",
        sla_deadline=OCCURRED_AT + timedelta(hours=8),
    )


def assigned(loan: UUID) -> ReviewCaseAssigned:
    return ReviewCaseAssigned(
        **common("review.case_assigned", loan, 1, ANALYST, "analyst"),
        assignee=ANALYST,
    )


def started(loan: UUID) -> ReviewCaseStarted:
    return ReviewCaseStarted(**common("review.case_started", loan, 2, ANALYST, "analyst"))


def decided(loan: UUID, actor: UUID = ANALYST, minute: int = 3) -> ReviewDecisionRecorded:
    fields = common("review.decision_recorded", loan, minute, actor, "analyst")
    return ReviewDecisionRecorded(
        **fields,
        decision_id=fields["event_id"],
        seq=1,
        decision_type="analyst_decline",
        outcome="decline",
        score=700,
        model_leaning="decline",
        is_override=False,
        review_time_seconds=60,
        reasoning="Too risky",
    )


def one_at_a_time(events: list[AnyReviewEvent]) -> dict[UUID, CaseState]:
    states: dict[UUID, CaseState] = {}
    for event in events:
        if not isinstance(event, AutoDecisionsRecorded):
            states[event.case_id] = evolve(states.get(event.case_id), event)
    return states


def test_a_cases_events_in_one_batch_fold_in_order_as_one_at_a_time_would() -> None:
    events: list[AnyReviewEvent] = [
        opened(LOANS[0]),
        opened(LOANS[1]),
        assigned(LOANS[0]),
        started(LOANS[0]),
        decided(LOANS[0]),
    ]

    folded = fold_reviews({}, events)

    assert {case: state for case, (_, state) in folded.cases.items()} == one_at_a_time(events)
    assert folded.cases[review_case_id(LOANS[0])][0] == events[0]  # the row's run and loan
    assert folded.writes == [events[4]]
    assert folded.refused == []


def test_a_stored_state_is_folded_on_and_a_refused_event_is_skipped_without_stopping_the_rest() -> (
    None
):
    stored = one_at_a_time([opened(LOANS[0]), assigned(LOANS[0]), started(LOANS[0])])
    refused, good = decided(LOANS[0], actor=STRANGER), decided(LOANS[0], minute=4)
    auto = AutoDecisionsRecorded(
        event_id=event_id("review.auto_decisions_recorded", RUN_ID, 0),
        run_id=RUN_ID,
        batch_seq=0,
        decisions=(AutoDecision(loan_id=LOANS[1], seq=2, decision_type="auto_approve", score=9),),
        occurred_at=OCCURRED_AT,
    )

    folded = fold_reviews(stored, [refused, auto, good])

    assert [refusal.event for refusal in folded.refused] == [refused]
    assert folded.writes == [auto, good]
    [(first, state)] = folded.cases.values()
    assert first == good
    assert (state.status, state.decided_by) == ("decided", ANALYST)
    assert stored[review_case_id(LOANS[0])].status == "in_progress"  # the stored map untouched
