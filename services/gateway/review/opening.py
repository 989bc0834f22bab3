"""Opening review cases (SPEC §8), pure: a `human_review` loan's score in, its case's event out.

Who opens a case: the gateway's review job (`jobs.py`) reads the scored read model for
`human_review` loans without a case and publishes one `review.case_opened` each on reviews.v1.
The case id (`review_case_id(loan_id)`) and the event id (`review.case_opened/{run_id}/{loan_id}`)
are deterministic, so a job that runs twice or on two replicas publishes the same event and the
fold keeps the first; Kafka stays the system of record and a rebuild restores the same cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from contracts.ids import event_id, review_case_id
from contracts.reviews import SYSTEM_ROLE, ReviewCaseOpened
from services.gateway.review.priority import PriorityPolicy, level, parse_amount, priority_points


@dataclass(frozen=True, slots=True)
class ScoredLoan:
    """What opening a case needs from a loan's score."""

    loan_id: UUID
    run_id: UUID
    seq: int
    seller_loan_number: str | None
    model_version: str
    score: int
    routing_reason: str
    loan_amount: str | None
    scored_at: datetime


def sla_deadline(opened_at: datetime, policy: PriorityPolicy) -> datetime:
    """When a case opened at `opened_at` must be decided."""
    return opened_at + timedelta(hours=float(policy.sla_hours))


def open_case(loan: ScoredLoan, policy: PriorityPolicy, now: datetime) -> ReviewCaseOpened:
    """The event opening the review case of a `human_review` loan."""
    points = priority_points(
        loan.score, parse_amount(loan.loan_amount), loan.scored_at, now, 0, policy
    )
    return ReviewCaseOpened(
        event_id=event_id("review.case_opened", loan.run_id, loan.loan_id),
        case_id=review_case_id(loan.loan_id),
        loan_id=loan.loan_id,
        run_id=loan.run_id,
        actor_role=SYSTEM_ROLE,
        occurred_at=now,
        seq=loan.seq,
        seller_loan_number=loan.seller_loan_number,
        model_version=loan.model_version,
        score=loan.score,
        routing_reason=loan.routing_reason,
        loan_amount=loan.loan_amount,
        scored_at=loan.scored_at,
        priority_score=points,
        priority=level(points),
        sla_deadline=sla_deadline(now, policy),
    )
