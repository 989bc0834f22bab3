"""Notifications (SPEC §8), pure: what is raised for whom, and how a webhook is signed and retried.

Who is told:

| kind | recipients | severity |
|---|---|---|
| `sla_warning` | the assignee, or the senior analysts while nobody holds the case | warning |
| `sla_breach` | the assignee and the senior analysts | critical |
| `escalation` | the senior analysts (the admins when there are none) | critical |
| `override_approved` / `override_rejected` | the analyst who decided | info / warning |
| `run_completed` / `run_failed` | who started the run and its sales team's users | info / warning |

A notification's id is `uuid5(NS, "notification/{kind}/{subject}")`: raising it twice is once.

Webhooks: the body is the notification as compact JSON with sorted keys, signed with the team's
secret: header `X-Loan-Engine-Signature: sha256=<hex HMAC-SHA256 of the exact body>`. A POST
answered 2xx is delivered; a connection error, a timeout, 408, 429 or 5xx is retried after
`backoff * 2^(attempt-1)` (at most an hour) until `max_attempts`; any other answer (the
receiver refuses it) fails the delivery at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from contracts.ids import NS, event_id
from contracts.notifications import NotificationKind, NotificationRaised, Severity

SIGNATURE_HEADER = "X-Loan-Engine-Signature"
EVENT_HEADER = "X-Loan-Engine-Event"
DELIVERY_HEADER = "X-Loan-Engine-Delivery"
MAX_BACKOFF = timedelta(hours=1)
RETRIED_STATUSES = frozenset({408, 429})
TITLE_CHARS = 200
MESSAGE_CHARS = 4000  # the contract's bounds: a long rejection note is cut, never refused
SEVERITY: dict[NotificationKind, Severity] = {
    "sla_warning": "warning",
    "sla_breach": "critical",
    "escalation": "critical",
    "override_approved": "info",
    "override_rejected": "warning",
    "run_completed": "info",
    "run_failed": "warning",
}


def notification_id(kind: NotificationKind, subject_id: UUID) -> UUID:
    """The one id of a kind of notification about a subject."""
    return event_id("notification", subject_id, kind)


def _unique(users: Iterable[UUID | None]) -> tuple[UUID, ...]:
    return tuple(sorted({user for user in users if user is not None}, key=str))


@dataclass(frozen=True, slots=True)
class Subject:
    """What a notification is about."""

    subject_id: UUID
    team_id: str | None = None
    run_id: UUID | None = None
    case_id: UUID | None = None
    decision_id: UUID | None = None


def raise_notification(
    kind: NotificationKind,
    subject: Subject,
    title: str,
    message: str,
    recipients: Iterable[UUID | None],
    now: datetime,
) -> NotificationRaised | None:
    """The notification, or None when nobody is to be told."""
    users = _unique(recipients)
    if not users:
        return None
    return NotificationRaised(
        event_id=notification_id(kind, subject.subject_id),
        kind=kind,
        severity=SEVERITY[kind],
        title=title[:TITLE_CHARS],
        message=message[:MESSAGE_CHARS],
        subject_id=subject.subject_id,
        team_id=subject.team_id,
        run_id=subject.run_id,
        case_id=subject.case_id,
        decision_id=subject.decision_id,
        recipients=users,
        occurred_at=now,
    )


@dataclass(frozen=True, slots=True)
class CaseNotice:
    """What the SLA notifications say about a case."""

    case_id: UUID
    run_id: UUID
    team_id: str | None
    seller_loan_number: str | None
    sla_deadline: datetime
    assignee: UUID | None


def _loan(case: CaseNotice) -> str:
    return f"loan {case.seller_loan_number}" if case.seller_loan_number else "a loan"


def sla_notifications(
    case: CaseNotice,
    kinds: Iterable[NotificationKind],
    seniors: tuple[UUID, ...],
    escalation_to: tuple[UUID, ...],
    now: datetime,
) -> list[NotificationRaised]:
    """The notifications of the SLA marks just due on a case (`sla_warning`, `sla_breach`,
    `escalation`)."""
    subject = Subject(case.case_id, case.team_id, case.run_id, case.case_id)
    deadline = case.sla_deadline.isoformat()
    texts: dict[NotificationKind, tuple[str, str, tuple[UUID | None, ...]]] = {
        "sla_warning": (
            "SLA deadline approaching",
            f"The review case of {_loan(case)} is due by {deadline}.",
            (case.assignee,) if case.assignee else seniors,
        ),
        "sla_breach": (
            "SLA breached",
            f"The review case of {_loan(case)} passed its deadline {deadline} undecided.",
            (case.assignee, *seniors),
        ),
        "escalation": (
            "Review case escalated",
            f"The review case of {_loan(case)} breached its SLA and is escalated to you.",
            escalation_to,
        ),
    }
    raised = (
        raise_notification(kind, subject, texts[kind][0], texts[kind][1], texts[kind][2], now)
        for kind in kinds
    )
    return [notification for notification in raised if notification is not None]


def override_notification(
    decision_id: UUID,
    case_id: UUID,
    run_id: UUID,
    team_id: str | None,
    approved: bool,
    analyst: UUID | None,
    notes: str | None,
    now: datetime,
) -> NotificationRaised | None:
    """The analyst's notice that their override was approved, or rejected (the case is theirs
    to decide again)."""
    kind: NotificationKind = "override_approved" if approved else "override_rejected"
    message = (
        "Your decision against the model was approved by a second person."
        if approved
        else "Your decision against the model was rejected; the case is back in progress. "
        + (f"Why: {notes}" if notes else "")
    ).strip()
    title = "Override approved" if approved else "Override rejected"
    subject = Subject(decision_id, team_id, run_id, case_id, decision_id)
    return raise_notification(kind, subject, title, message, (analyst,), now)


def run_notification(
    run_id: UUID,
    status: str,
    team_id: str | None,
    error: str | None,
    recipients: Iterable[UUID | None],
    now: datetime,
) -> NotificationRaised | None:
    """The notice that a run completed or failed."""
    failed = status == "failed"
    kind: NotificationKind = "run_failed" if failed else "run_completed"
    title = "Run failed" if failed else "Run completed"
    message = (
        f"Run {run_id} failed: {error or 'no reason given'}"
        if failed
        else (f"Run {run_id} completed; its reports are ready.")
    )
    return raise_notification(
        kind, Subject(run_id, team_id, run_id), title, message, recipients, now
    )


def delivery_id(notification: UUID, team_id: str) -> UUID:
    """The one delivery of a notification to a team's webhook."""
    return uuid5(NS, f"webhook-delivery/{team_id}/{notification}")


def webhook_body(delivery: UUID, notification: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed): the notification with its delivery id."""
    payload = {**notification, "delivery_id": str(delivery)}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether a signature header matches the body (constant time); what a receiver does."""
    return hmac.compare_digest(signature(secret, body), header)


def retried(status: int | None) -> bool:
    """Whether an answer (None: no answer at all) is worth another try."""
    return status is None or status >= 500 or status in RETRIED_STATUSES


def next_attempt(now: datetime, attempts: int, backoff_seconds: float) -> datetime:
    """When to try again after `attempts` failed tries."""
    wait = timedelta(seconds=backoff_seconds) * (2 ** max(0, attempts - 1))
    return now + min(wait, MAX_BACKOFF)
