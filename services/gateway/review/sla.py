"""The SLA of review cases (SPEC §8), pure: what the SLA and auto-assign jobs publish at a time.

- **Warning** `review_warning_hours` (2 h) before the deadline, once per open case; a case first
  seen already past its deadline gets no warning, only the breach.
- **Breach** at the deadline, once per open case (pending, assigned or in progress: a decision
  waiting for its override's approval has met the SLA).
- **Escalation** to the senior analysts with the breach, once per case.
- **Auto-assign**: a pending case within `review_auto_assign_hours` of its deadline goes to the
  active analyst holding the fewest active cases (below the limit of 5; ties by user id), most
  urgent case first; nobody gets more than the limit. With no analyst free the case waits.

Every event id is deterministic (`uuid5` of the kind and the case, and for an assignment the
number of releases so far), so a job that runs twice or on two gateway replicas publishes the
same events and the fold keeps the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from contracts.ids import event_id
from contracts.reviews import (
    SYSTEM_ROLE,
    CaseStatus,
    ReviewCaseAssigned,
    ReviewCaseEscalated,
    ReviewEvent,
    ReviewSlaBreached,
    ReviewSlaWarned,
)
from services.gateway.review.domain import MAX_ACTIVE, OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class SlaCase:
    """What the SLA jobs know of an open case."""

    case_id: UUID
    loan_id: UUID
    run_id: UUID
    status: CaseStatus
    sla_deadline: datetime
    releases: int = 0
    assignee: UUID | None = None
    warned: bool = False
    breached: bool = False
    escalated: bool = False


def _hours(value: Decimal) -> timedelta:
    return timedelta(hours=float(value))


def _common(case: SlaCase, kind: str, now: datetime, *parts: object) -> dict[str, Any]:
    return {
        "event_id": event_id(kind, case.case_id, *(parts or ("",))),
        "case_id": case.case_id,
        "loan_id": case.loan_id,
        "run_id": case.run_id,
        "actor_id": None,
        "actor_role": SYSTEM_ROLE,
        "occurred_at": now,
    }


def sla_events(case: SlaCase, now: datetime, warning_hours: Decimal) -> list[ReviewEvent]:
    """The SLA marks due on the case at `now` (none once it is decided)."""
    if case.status not in OPEN_STATUSES:
        return []
    events: list[ReviewEvent] = []
    if now >= case.sla_deadline:
        if not case.breached:
            events.append(
                ReviewSlaBreached(
                    **_common(case, "review.sla_breached", now),
                    sla_deadline=case.sla_deadline,
                    notes="The case passed its SLA deadline undecided",
                )
            )
        if not case.escalated:
            events.append(
                ReviewCaseEscalated(
                    **_common(case, "review.case_escalated", now),
                    reason="sla_breached",
                    notes="Escalated to the senior analysts: SLA breached",
                )
            )
    elif now >= case.sla_deadline - _hours(warning_hours) and not case.warned:
        events.append(
            ReviewSlaWarned(
                **_common(case, "review.sla_warned", now),
                sla_deadline=case.sla_deadline,
                notes="The case's SLA deadline is near",
            )
        )
    return events


def auto_assignments(
    cases: Iterable[SlaCase],
    active: dict[UUID, int],
    now: datetime,
    assign_hours: Decimal,
) -> list[ReviewCaseAssigned]:
    """Assign every pending case near its deadline, most urgent first, to the least-loaded
    analyst in `active` (user id → active cases); cases left over wait for the next run."""
    load = dict(active)
    due = sorted(
        (
            case
            for case in cases
            if case.status == "pending" and now >= case.sla_deadline - _hours(assign_hours)
        ),
        key=lambda case: (case.sla_deadline, str(case.case_id)),
    )
    events: list[ReviewCaseAssigned] = []
    for case in due:
        free = [user for user, count in load.items() if count < MAX_ACTIVE]
        if not free:
            break
        chosen = min(free, key=lambda user: (load[user], str(user)))
        load[chosen] += 1
        events.append(
            ReviewCaseAssigned(
                **_common(case, "review.auto_assigned", now, case.releases),
                assignee=chosen,
                notes="Auto-assigned: the SLA deadline is near",
            )
        )
    return events


def escalation_targets(seniors: Sequence[UUID], admins: Sequence[UUID]) -> tuple[UUID, ...]:
    """Who an escalation goes to: the senior analysts, or the admins when there are none."""
    return tuple(seniors) if seniors else tuple(admins)
