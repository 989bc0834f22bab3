"""The review SLA and notifications, pure (SPEC §8): warnings, breaches and escalations each once,
auto-assignment to the least-loaded analyst, the fold of system marks, who is notified, and how a
webhook is signed and retried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.reviews import (
    ReviewCaseAssigned,
    ReviewCaseEscalated,
    ReviewCaseOpened,
    ReviewCaseStarted,
    ReviewSlaBreached,
    ReviewSlaWarned,
)
from services.gateway.notifications.domain import (
    CaseNotice,
    next_attempt,
    notification_id,
    override_notification,
    retried,
    run_notification,
    signature,
    sla_notifications,
    verify,
    webhook_body,
)
from services.gateway.notifications.webhooks import CONCURRENCY, PAGE, lease_of
from services.gateway.review.domain import (
    MAX_ACTIVE,
    CaseState,
    InvalidTransition,
    NotPermitted,
    evolve,
)
from services.gateway.review.sla import SlaCase, auto_assignments, escalation_targets, sla_events
from services.gateway.settings import GatewaySettings

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TWO = Decimal(2)


def case(deadline_in: timedelta, **fields: object) -> SlaCase:
    values: dict[str, object] = {
        "case_id": uuid4(),
        "loan_id": uuid4(),
        "run_id": uuid4(),
        "status": "pending",
        "sla_deadline": NOW + deadline_in,
    }
    values.update(fields)
    return SlaCase(**values)  # type: ignore[arg-type]


def test_a_case_far_from_its_deadline_owes_nothing() -> None:
    assert sla_events(case(timedelta(hours=3)), NOW, TWO) == []


def test_a_case_two_hours_from_its_deadline_is_warned_once() -> None:
    due = case(timedelta(hours=2))
    (warning,) = sla_events(due, NOW, TWO)
    assert isinstance(warning, ReviewSlaWarned)
    assert warning.actor_id is None and warning.actor_role == "system"
    assert sla_events(due, NOW + timedelta(minutes=5), TWO)[0].event_id == warning.event_id
    assert sla_events(case(timedelta(hours=1), warned=True), NOW, TWO) == []


def test_a_case_past_its_deadline_is_breached_and_escalated_without_a_late_warning() -> None:
    late = case(timedelta(seconds=0), status="in_progress")
    events = sla_events(late, NOW, TWO)
    assert [type(event) for event in events] == [ReviewSlaBreached, ReviewCaseEscalated]
    assert events[1].reason == "sla_breached"  # type: ignore[attr-defined]
    again = sla_events(late, NOW + timedelta(hours=1), TWO)
    assert [event.event_id for event in again] == [event.event_id for event in events]
    assert sla_events(case(-timedelta(hours=1), breached=True, escalated=True), NOW, TWO) == []


def test_a_decided_or_override_pending_case_has_met_its_sla() -> None:
    for status in ("decided", "override_pending"):
        assert sla_events(case(-timedelta(hours=1), status=status), NOW, TWO) == []


def test_auto_assign_gives_the_most_urgent_cases_to_the_least_loaded_analysts() -> None:
    alice, bob = UUID(int=1), UUID(int=2)
    urgent = case(timedelta(minutes=10))
    later = case(timedelta(minutes=90))
    far = case(timedelta(hours=5))
    taken = case(timedelta(minutes=5), status="assigned")
    events = auto_assignments([later, far, taken, urgent], {alice: 1, bob: 0}, NOW, TWO)
    assert [(event.case_id, event.assignee) for event in events] == [
        (urgent.case_id, bob),
        (later.case_id, alice),  # a tie at one case each: the lower user id
    ]
    assert all(event.actor_id is None and event.actor_role == "system" for event in events)


def test_auto_assign_never_exceeds_the_workload_limit_and_leaves_the_rest_waiting() -> None:
    alice = UUID(int=1)
    cases = [case(timedelta(minutes=minutes)) for minutes in range(1, 4)]
    events = auto_assignments(cases, {alice: MAX_ACTIVE - 1}, NOW, TWO)
    assert [event.case_id for event in events] == [cases[0].case_id]
    assert auto_assignments(cases, {}, NOW, TWO) == []


def test_an_auto_assignment_after_a_release_is_a_new_event() -> None:
    alice = UUID(int=1)
    first = case(timedelta(minutes=10))
    again = SlaCase(**{**{f: getattr(first, f) for f in SlaCase.__slots__}, "releases": 1})
    one = auto_assignments([first], {alice: 0}, NOW, TWO)[0]
    two = auto_assignments([again], {alice: 0}, NOW, TWO)[0]
    assert one.event_id != two.event_id
    assert auto_assignments([first], {alice: 0}, NOW, TWO)[0].event_id == one.event_id


def opened_state() -> tuple[SlaCase, CaseState]:
    due = case(-timedelta(minutes=1))
    opened = ReviewCaseOpened(
        event_id=uuid4(),
        case_id=due.case_id,
        loan_id=due.loan_id,
        run_id=due.run_id,
        actor_role="system",
        occurred_at=NOW - timedelta(hours=8),
        seq=1,
        model_version="7",
        score=700,
        routing_reason="borderline_score",
        scored_at=NOW - timedelta(hours=8),
        priority_score=40,
        priority="medium",
        sla_deadline=due.sla_deadline,
    )
    return due, evolve(None, opened)


def test_the_fold_records_each_sla_mark_once_and_only_on_an_open_case() -> None:
    due, state = opened_state()
    breach, escalation = sla_events(due, NOW, TWO)
    state = evolve(evolve(state, breach), escalation)
    assert state.status == "pending"
    assert (state.sla_breached_at, state.escalated_at) == (NOW, NOW)
    with pytest.raises(InvalidTransition):
        evolve(state, breach)
    with pytest.raises(InvalidTransition):
        evolve(CaseState(status="decided"), escalation)


def test_the_system_assigns_only_a_pending_case_and_nothing_else_without_a_person() -> None:
    due, state = opened_state()
    (assignment,) = auto_assignments([due], {UUID(int=3): 0}, NOW, TWO)
    assigned = evolve(state, assignment)
    assert (assigned.status, assigned.assignee) == ("assigned", UUID(int=3))
    with pytest.raises(InvalidTransition):
        evolve(assigned, assignment)
    assert isinstance(assignment, ReviewCaseAssigned) and assignment.actor_id is None
    system_start = ReviewCaseStarted(
        event_id=uuid4(),
        case_id=due.case_id,
        loan_id=due.loan_id,
        run_id=due.run_id,
        actor_role="system",
        occurred_at=NOW,
    )
    with pytest.raises(NotPermitted):
        evolve(assigned, system_start)


SENIORS = (UUID(int=10), UUID(int=11))


def notice(assignee: UUID | None = None) -> CaseNotice:
    return CaseNotice(uuid4(), uuid4(), "team-a", "L-7", NOW, assignee)


def test_a_warning_goes_to_the_assignee_or_to_the_seniors_while_nobody_holds_the_case() -> None:
    analyst = UUID(int=5)
    (held,) = sla_notifications(notice(analyst), ["sla_warning"], SENIORS, SENIORS, NOW)
    assert held.recipients == (analyst,)
    (free,) = sla_notifications(notice(), ["sla_warning"], SENIORS, SENIORS, NOW)
    assert free.recipients == SENIORS
    assert free.severity == "warning" and "L-7" in free.message


def test_a_breach_tells_the_assignee_and_the_seniors_and_the_escalation_the_seniors() -> None:
    analyst = UUID(int=5)
    breach, escalation = sla_notifications(
        notice(analyst), ["sla_breach", "escalation"], SENIORS, SENIORS, NOW
    )
    assert set(breach.recipients) == {analyst, *SENIORS}
    assert escalation.recipients == SENIORS
    assert (breach.severity, escalation.severity) == ("critical", "critical")
    assert breach.team_id == "team-a"


def test_escalations_go_to_the_admins_when_there_is_no_senior_analyst() -> None:
    admin = UUID(int=99)
    assert escalation_targets((), (admin,)) == (admin,)
    assert escalation_targets(SENIORS, (admin,)) == SENIORS


def test_nobody_to_tell_raises_no_notification() -> None:
    assert sla_notifications(notice(), ["sla_warning"], (), (), NOW) == []


def test_a_notification_has_one_id_per_kind_and_subject() -> None:
    subject = uuid4()
    assert notification_id("sla_breach", subject) == notification_id("sla_breach", subject)
    assert notification_id("sla_breach", subject) != notification_id("escalation", subject)


def test_an_override_rejection_tells_the_analyst_why() -> None:
    analyst = UUID(int=5)
    rejected = override_notification(
        uuid4(), uuid4(), uuid4(), None, False, analyst, "Needs the appraisal first", NOW
    )
    assert rejected is not None
    assert (rejected.kind, rejected.recipients) == ("override_rejected", (analyst,))
    assert "Needs the appraisal first" in rejected.message
    approved = override_notification(uuid4(), uuid4(), uuid4(), None, True, analyst, None, NOW)
    assert approved is not None and approved.kind == "override_approved"


def test_a_failed_run_notice_carries_its_error() -> None:
    run = uuid4()
    failed = run_notification(run, "failed", "team-a", "tape missing rows 3-4", [UUID(int=1)], NOW)
    assert failed is not None and failed.kind == "run_failed"
    assert "tape missing rows 3-4" in failed.message
    done = run_notification(run, "completed", None, None, [UUID(int=1), UUID(int=1)], NOW)
    assert done is not None and done.recipients == (UUID(int=1),)


def test_the_webhook_signature_is_an_hmac_sha256_of_the_exact_body() -> None:
    body = webhook_body(UUID(int=1), {"kind": "sla_breach", "title": "SLA breached"})
    assert body == (
        b'{"delivery_id":"00000000-0000-0000-0000-000000000001",'
        b'"kind":"sla_breach","title":"SLA breached"}'
    )
    header = signature("a-secret-of-16-chars", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify("a-secret-of-16-chars", body, header)
    assert not verify("another-secret-16ch", body, header)
    assert not verify("a-secret-of-16-chars", body + b" ", header)


def test_only_no_answer_timeouts_throttling_and_server_errors_are_retried() -> None:
    assert all(retried(status) for status in (None, 408, 429, 500, 502, 503))
    assert not any(retried(status) for status in (400, 401, 404, 410))


def test_retries_back_off_exponentially_up_to_an_hour() -> None:
    waits = [next_attempt(NOW, attempts, 30) - NOW for attempts in (1, 2, 3, 4, 12)]
    assert waits[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert waits[4] == timedelta(hours=1)


def measured(priority: str, opened_h: float, decided_h: float | None, **marks: bool) -> Any:
    from services.gateway.review.sla_metrics import MeasuredCase

    opened = NOW - timedelta(hours=10)
    return MeasuredCase(
        priority=priority,  # type: ignore[arg-type]
        opened_at=opened + timedelta(hours=opened_h),
        sla_deadline=opened + timedelta(hours=opened_h + 8),
        decided_at=None if decided_h is None else opened + timedelta(hours=opened_h + decided_h),
        **marks,
    )


def test_sla_metrics_count_on_time_late_and_open_breaches_and_the_rate_over_known_outcomes() -> (
    None
):
    from services.gateway.review.sla_metrics import by_priority, figures

    cases = [
        measured("high", 0, 1),  # on time
        measured("high", 0, 8),  # on time: at the deadline
        measured("high", 0, 9, warned=True, escalated=True),  # late
        measured("low", 0, None, warned=True, escalated=True),  # open, breached (10 h old)
        measured("low", 5, None),  # open, not due yet
    ]
    total = figures(cases, NOW)
    assert (total.cases, total.decided, total.on_time, total.late) == (5, 3, 2, 1)
    assert (total.open, total.open_breached, total.breaches) == (2, 1, 2)
    assert total.on_time_rate == Decimal("0.5000")
    assert (total.warnings, total.escalations) == (2, 2)
    assert total.time_to_decision_seconds is not None
    assert total.time_to_decision_seconds.p50 == 8 * 3600
    assert total.time_to_decision_seconds.mean == 6 * 3600
    assert total.time_to_decision_seconds.max == 9 * 3600
    levels = by_priority(cases, NOW)
    assert list(levels) == ["critical", "high", "medium", "low"]
    assert levels["high"].on_time_rate == Decimal("0.6667")
    assert levels["low"].on_time_rate == Decimal("0.0000")
    assert levels["critical"].cases == 0 and levels["critical"].on_time_rate is None
    assert levels["critical"].time_to_decision_seconds is None


def test_percentiles_are_nearest_rank() -> None:
    from services.gateway.review.sla_metrics import durations, percentile

    values = list(range(1, 101))
    assert [percentile(values, share) for share in (50, 90, 95)] == [50, 90, 95]
    assert percentile([7], 95) == 7
    assert durations([]) is None


def test_a_rejection_note_too_long_for_a_notification_is_cut_not_refused() -> None:
    rejected = override_notification(
        uuid4(), uuid4(), uuid4(), None, False, UUID(int=5), "x" * 4000, NOW
    )
    assert rejected is not None and len(rejected.message) == 4000


def test_a_webhook_page_is_leased_for_longer_than_its_tries_can_take() -> None:
    slow = GatewaySettings(webhook_timeout_seconds=10)
    worst = (PAGE // CONCURRENCY) * 10
    assert lease_of(slow).total_seconds() > worst
    assert lease_of(GatewaySettings(webhook_timeout_seconds=1)).total_seconds() == 120
