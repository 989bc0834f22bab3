"""The review queue (SPEC §8), pure: each open case's priority and SLA state at a given time,
filters, sort orders and the summary counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal
from uuid import UUID

from contracts.reviews import PRIORITIES, CaseStatus, Priority
from services.gateway.review.priority import PriorityPolicy, level, parse_amount, priority_points

SlaState = Literal["ok", "approaching", "breached", "met"]
Sort = Literal["priority", "created", "deadline"]
OPEN: frozenset[CaseStatus] = frozenset({"pending", "assigned", "in_progress"})


@dataclass(frozen=True, slots=True)
class QueuedCase:
    """What the queue knows of a case."""

    case_id: UUID
    status: CaseStatus
    score: int
    loan_amount: str | None
    scored_at: datetime
    opened_at: datetime
    sla_deadline: datetime
    releases: int


@dataclass(frozen=True, slots=True)
class Ranked:
    """A case with its priority and SLA state at a given time."""

    case: QueuedCase
    priority_score: int
    priority: Priority
    sla_state: SlaState


def sla_state(
    status: CaseStatus, deadline: datetime, now: datetime, warning_hours: Decimal
) -> SlaState:
    """Where a case stands against its deadline (`met` once decided)."""
    if status not in OPEN:
        return "met"
    if now >= deadline:
        return "breached"
    if now >= deadline - timedelta(hours=float(warning_hours)):
        return "approaching"
    return "ok"


def rank(case: QueuedCase, now: datetime, policy: PriorityPolicy, warning_hours: Decimal) -> Ranked:
    """The case's priority and SLA state at `now`."""
    points = priority_points(
        case.score, parse_amount(case.loan_amount), case.scored_at, now, case.releases, policy
    )
    return Ranked(
        case, points, level(points), sla_state(case.status, case.sla_deadline, now, warning_hours)
    )


def ordered(items: Iterable[Ranked], sort: Sort) -> list[Ranked]:
    """Cases in queue order: highest priority, oldest or nearest deadline first."""
    if sort == "priority":
        return sorted(items, key=lambda r: (-r.priority_score, r.case.sla_deadline, r.case.case_id))
    if sort == "created":
        return sorted(items, key=lambda r: (r.case.opened_at, r.case.case_id))
    return sorted(items, key=lambda r: (r.case.sla_deadline, -r.priority_score, r.case.case_id))


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts of the open cases."""

    total_pending: int
    total_assigned: int
    total_in_progress: int
    approaching_sla: int
    breached_sla: int
    by_priority: dict[str, int]


def summarise(items: Sequence[Ranked]) -> Summary:
    """The queue summary of ranked cases (open ones only count)."""
    open_items = [r for r in items if r.case.status in OPEN]
    statuses = Counter(r.case.status for r in open_items)
    states = Counter(r.sla_state for r in open_items)
    priorities = Counter(r.priority for r in open_items)
    return Summary(
        total_pending=statuses["pending"],
        total_assigned=statuses["assigned"],
        total_in_progress=statuses["in_progress"],
        approaching_sla=states["approaching"],
        breached_sla=states["breached"],
        by_priority={name: priorities[name] for name in PRIORITIES},
    )
