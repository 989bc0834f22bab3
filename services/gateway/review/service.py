"""Credit review cases: the queue, case detail, and actions checked against the lifecycle,
published on reviews.v1 and answered once folded (read your own writes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts import routing
from contracts.reviews import CaseStatus, Condition, Priority, ReviewEvent
from contracts.topics import REVIEWS
from services.gateway import acting
from services.gateway.deps import Publisher
from services.gateway.errors import BadRequest, Conflict, Forbidden, GatewayError, NotFound
from services.gateway.identity import repository as identity
from services.gateway.identity.principal import Principal
from services.gateway.review import decisions, sla_queries
from services.gateway.review import repository as repo
from services.gateway.review.decisions import DecisionRequest
from services.gateway.review.domain import (
    REVIEWER_ROLES,
    Action,
    Actor,
    CaseRef,
    CaseState,
    Command,
    InvalidTransition,
    NotPermitted,
    ReviewError,
    WorkloadExceeded,
    decide,
)
from services.gateway.review.priority import PriorityPolicy
from services.gateway.review.queue import OPEN, QueuedCase, Ranked, Sort, Summary, rank, summarise
from services.gateway.review.queue import ordered as in_order
from services.gateway.review.schemas import (
    CaseActionRequest,
    CaseDetail,
    CaseEvent,
    CaseException,
    CaseSummary,
    DecisionBody,
    DecisionView,
    QueuePage,
    ScoreView,
    SimilarLoan,
    SlaMetrics,
)
from services.gateway.review.similar import nearest
from services.gateway.review.sla_metrics import MeasuredCase, SlaFigures, by_priority, figures
from services.gateway.settings import GatewaySettings

SIMILAR_LOANS = 5
METRICS_WINDOW = timedelta(days=30)


def policy_of(settings: GatewaySettings) -> PriorityPolicy:
    """The priority policy the settings describe."""
    return PriorityPolicy(
        auto_approve_min=settings.review_auto_approve_min,
        auto_decline_max=settings.review_auto_decline_max,
        amount_cap=settings.review_amount_cap,
        sla_hours=settings.review_sla_hours,
    )


def policy_for(settings: GatewaySettings, policy_version: str | None) -> PriorityPolicy:
    """The priority policy with the band of the routing policy that routed the loan (the
    settings' band when the version is unknown or not given)."""
    policy = policy_of(settings)
    band = routing.thresholds(policy_version) if policy_version else None
    if band is None:
        return policy
    return replace(
        policy, auto_approve_min=band.auto_approve_min, auto_decline_max=band.auto_decline_max
    )


def _queued(row: Any) -> QueuedCase:
    return QueuedCase(
        row.case_id,
        row.status,
        row.score,
        row.loan_amount,
        row.scored_at,
        row.opened_at,
        row.sla_deadline,
        row.releases,
    )


def _ranked(rows: Sequence[Any], settings: GatewaySettings, now: datetime) -> list[Ranked]:
    policy = policy_of(settings)
    return [rank(_queued(row), now, policy, settings.review_warning_hours) for row in rows]


def _summary(row: Any, ranked: Ranked) -> CaseSummary:
    return CaseSummary(
        case_id=row.case_id,
        loan_id=row.loan_id,
        run_id=row.run_id,
        seq=row.seq,
        seller_loan_number=row.seller_loan_number,
        sales_team_id=row.sales_team_id,
        score=row.score,
        routing_reason=row.routing_reason,
        loan_amount=row.loan_amount,
        status=row.status,
        assignee=row.assignee,
        priority=ranked.priority,
        priority_score=ranked.priority_score,
        releases=row.releases,
        opened_at=row.opened_at,
        sla_deadline=row.sla_deadline,
        sla_state=ranked.sla_state,
        sla_warned_at=row.sla_warned_at,
        sla_breached_at=row.sla_breached_at,
        escalated_at=row.escalated_at,
    )


async def queue(
    session: AsyncSession,
    user: Principal,
    settings: GatewaySettings,
    *,
    status: CaseStatus | None,
    analyst: UUID | None,
    priority: Priority | None,
    sort: Sort,
    skip: int,
    limit: int,
    now: datetime,
) -> QueuePage:
    """One page of the cases in scope (open ones unless a status is asked for)."""
    statuses = [status] if status is not None else sorted(OPEN)
    rows = await repo.find_cases(session, user.team_scope, statuses, analyst)
    by_id = {row.case_id: row for row in rows}
    ranked = [r for r in _ranked(rows, settings, now) if priority in (None, r.priority)]
    listed = in_order(ranked, sort)
    page = listed[skip : skip + limit]
    return QueuePage(
        items=[_summary(by_id[r.case.case_id], r) for r in page],
        total=len(listed),
        skip=skip,
        limit=limit,
    )


async def summary(
    session: AsyncSession, user: Principal, settings: GatewaySettings, now: datetime
) -> Summary:
    """The counts of the open cases in scope."""
    rows = await repo.find_cases(session, user.team_scope, sorted(OPEN), None)
    return summarise(_ranked(rows, settings, now))


async def detail(
    session: AsyncSession,
    user: Principal,
    settings: GatewaySettings,
    case_id: UUID,
    now: datetime,
) -> CaseDetail:
    """A case with everything a person needs to decide it."""
    row = await repo.get_case(session, case_id, user.team_scope)
    if row is None:
        raise NotFound("Review case not found")
    ranked = _ranked([row], settings, now)[0]
    score = await repo.score_of(session, row.run_id, row.seq)
    loan = await repo.loan_of(session, row.run_id, row.seq)
    exceptions = await repo.exceptions_of(session, row.run_id, row.seq)
    similar: list[SimilarLoan] = []
    if score is not None:
        candidates = await repo.similar_candidates(session, row.loan_id, row.score, user.team_scope)
        similar = [
            SimilarLoan(
                loan_id=other.loan_id,
                run_id=other.run_id,
                seq=other.seq,
                seller_loan_number=other.seller_loan_number,
                score=other.score,
                decision=other.decision_type,
                distance=round(distance, 6),
            )
            for other, distance in nearest(
                score.features, ((c, c.features) for c in candidates), SIMILAR_LOANS
            )
        ]
    history = await repo.history(session, case_id)
    taken = await repo.decisions_of_case(session, case_id)
    return CaseDetail(
        **_summary(row, ranked).model_dump(),
        score_detail=ScoreView.model_validate(score, from_attributes=True) if score else None,
        loan=dict(loan._mapping) if loan is not None else None,
        exceptions=[CaseException.model_validate(e, from_attributes=True) for e in exceptions],
        similar_loans=similar,
        history=[CaseEvent.model_validate(h, from_attributes=True) for h in history],
        decisions=[decision_view(d) for d in taken],
        model_leaning=decisions.leaning(
            row.score, policy_for(settings, score.policy_version if score else None)
        ),
        justification_min_length=decisions.JUSTIFICATION_MIN,
    )


def decision_view(row: Any) -> DecisionView:
    """A decision row as the API shows it."""
    return DecisionView.model_validate(row, from_attributes=True)


def http_error(error: ReviewError) -> GatewayError:
    """The HTTP answer of a lifecycle rule."""
    if isinstance(error, InvalidTransition | WorkloadExceeded):
        return Conflict(str(error))
    if isinstance(error, NotPermitted):
        return Forbidden(str(error))
    return BadRequest(str(error))


def _state(row: Any) -> CaseState:
    return CaseState(
        status=row.status,
        assignee=row.assignee,
        releases=row.releases,
        started_at=row.started_at,
        decision_id=row.decision_id,
        decided_by=row.decided_by,
        conditions=row.conditions,
        fulfilled=tuple(row.fulfilled),
    )


def _ref(row: Any) -> CaseRef:
    return CaseRef(row.case_id, row.loan_id, row.run_id)


async def _publish_and_wait(
    session: AsyncSession, publisher: Publisher, event: ReviewEvent, wait_seconds: float
) -> bool:
    await publisher.publish(REVIEWS, str(event.case_id), event)
    folded = await wait_folded(session, [event.event_id], wait_seconds)
    outcome = folded.get(event.event_id)
    if outcome is not None and not outcome.applied:
        raise Conflict(outcome.reason)
    return outcome is not None


async def decide_case(
    session: AsyncSession,
    publisher: Publisher,
    user: Principal,
    settings: GatewaySettings,
    case_id: UUID,
    body: DecisionBody,
    request_id: str | None,
    now: datetime,
) -> bool:
    """Record the assignee's decision on a case; True once folded."""
    row = await repo.get_case(session, case_id, user.team_scope)
    if row is None:
        raise NotFound("Review case not found")
    score = await repo.score_of(session, row.run_id, row.seq)
    request = DecisionRequest(
        outcome=body.outcome,
        terms=body.terms,
        conditions=[Condition(**c.model_dump()) for c in body.conditions],
        reasoning=body.reasoning,
        justification=body.justification,
    )
    try:
        event = decisions.decide_case(
            _ref(row),
            _state(row),
            row.seq,
            row.score,
            Actor(user.user_id, user.role),
            request,
            policy_for(settings, score.policy_version if score else None),
            now,
            uuid4(),
            request_id,
        )
    except ReviewError as error:
        raise http_error(error) from error
    return await _publish_and_wait(session, publisher, event, settings.review_wait_seconds)


async def review_override(
    session: AsyncSession,
    publisher: Publisher,
    user: Principal,
    settings: GatewaySettings,
    decision_id: UUID,
    approve: bool,
    notes: str | None,
    request_id: str | None,
    now: datetime,
) -> bool:
    """Approve or reject a pending override (a different senior analyst or admin)."""
    decision = await repo.get_decision(session, decision_id, user.team_scope)
    if decision is None or decision.case_id is None:
        raise NotFound("Decision not found")
    row = await repo.get_case(session, decision.case_id, user.team_scope)
    if row is None:
        raise NotFound("Decision not found")
    try:
        state = _state(row)
        if state.decision_id != decision_id:
            raise InvalidTransition("review the override of", "decided")
        event = decisions.override_review(
            _ref(row),
            state,
            Actor(user.user_id, user.role),
            approve,
            notes,
            now,
            uuid4(),
            request_id,
        )
    except ReviewError as error:
        raise http_error(error) from error
    return await _publish_and_wait(session, publisher, event, settings.review_wait_seconds)


async def fulfil_condition(
    session: AsyncSession,
    publisher: Publisher,
    user: Principal,
    settings: GatewaySettings,
    decision_id: UUID,
    ordinal: int,
    notes: str | None,
    request_id: str | None,
    now: datetime,
) -> bool:
    """Mark one condition of an approval fulfilled."""
    decision = await repo.get_decision(session, decision_id, user.team_scope)
    if decision is None or decision.case_id is None:
        raise NotFound("Decision not found")
    row = await repo.get_case(session, decision.case_id, user.team_scope)
    if row is None:
        raise NotFound("Decision not found")
    try:
        state = _state(row)
        if state.decision_id != decision_id:
            raise InvalidTransition("fulfil a condition of", row.status)
        event = decisions.fulfil(
            _ref(row),
            state,
            Actor(user.user_id, user.role),
            ordinal,
            notes,
            now,
            uuid4(),
            request_id,
        )
    except ReviewError as error:
        raise http_error(error) from error
    return await _publish_and_wait(session, publisher, event, settings.review_wait_seconds)


async def act(
    session: AsyncSession,
    publisher: Publisher,
    user: Principal,
    case_id: UUID,
    action: Action,
    body: CaseActionRequest,
    request_id: str | None,
    wait_seconds: float,
    now: datetime,
) -> bool:
    """Take one action on a case; True once folded, False if the projector lags behind."""
    row = await repo.get_case(session, case_id, user.team_scope)
    if row is None:
        raise NotFound("Review case not found")
    if user.role not in REVIEWER_ROLES:
        raise Forbidden(f"Role {user.role} may not work on review cases")
    assignee = body.assignee or (user.user_id if action == "assign" else None)
    assigning = assignee if action == "assign" else None
    async with workload_lock(session, assigning):
        counts: dict[UUID, int] = {}
        if assigning is not None:
            person = await identity.get_user_by_id(session, assigning)
            if person is None or not person.is_active or person.role not in REVIEWER_ROLES:
                raise BadRequest("The assignee is not an active analyst")
            counts[assigning] = await repo.active_cases(session, assigning)
        command = Command(
            action, Actor(user.user_id, user.role), now, uuid4(), assignee, body.notes, request_id
        )
        try:
            event = decide(
                _ref(row),
                _state(row),
                command,
                lambda person: counts.get(person, 0),
            )
        except ReviewError as error:
            raise http_error(error) from error
        return await _publish_and_wait(session, publisher, event, wait_seconds)


WORKLOAD_LOCKS = 0x4C45_5257
"""The first key of the workload locks (two-int advisory locks never meet single-bigint ones)."""


@asynccontextmanager
async def workload_lock(session: AsyncSession, assignee: UUID | None) -> AsyncIterator[None]:
    """Assignments to one person one at a time, across requests and gateways.

    The count, the publish and the wait for the fold all happen under a session-level advisory
    lock held on a connection of its own (the request's session commits while it waits), so two
    assignments at once cannot both see four active cases and both be given a fifth.
    """
    if assignee is None:
        yield
        return
    key = {"space": WORKLOAD_LOCKS, "key": int.from_bytes(assignee.bytes[:4], "big", signed=True)}
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    async with engine.connect() as connection:
        await connection.execute(text("SELECT pg_advisory_lock(:space, :key)"), key)
        await connection.commit()
        try:
            yield
        finally:
            await connection.execute(text("SELECT pg_advisory_unlock(:space, :key)"), key)
            await connection.commit()


async def publish_all(publisher: Publisher, events: Iterable[ReviewEvent]) -> None:
    """Publish events keyed by case id."""
    await acting.publish_all(publisher, REVIEWS, events, lambda event: str(event.case_id))


async def wait_folded(
    session: AsyncSession, event_ids: Sequence[UUID], wait_seconds: float
) -> dict[UUID, Any]:
    """The fold outcomes of the events, waiting up to `wait_seconds` for all of them."""
    return await acting.wait_folded(session, event_ids, wait_seconds, repo.outcomes)


def _figures(figures: SlaFigures) -> dict[str, Any]:
    return asdict(figures)


async def sla_metrics(
    session: AsyncSession,
    user: Principal,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> SlaMetrics:
    """The SLA figures of the cases in scope opened in [since, until)."""
    end = until or now
    if (since is not None and since.tzinfo is None) or end.tzinfo is None:
        raise BadRequest("since and until need a time zone (e.g. 2026-12-07T00:00:00Z)")
    try:
        start = (since or end - METRICS_WINDOW).astimezone(UTC)
        end = end.astimezone(UTC)
    except OverflowError as error:
        raise BadRequest("since and until must lie within the years 1 to 9999 in UTC") from error
    if start >= end:
        raise BadRequest("since must be before until")
    rows = await sla_queries.measured_cases(session, start, end, user.team_scope)
    cases = [
        MeasuredCase(
            priority=row.opened_priority,
            opened_at=row.opened_at,
            sla_deadline=row.sla_deadline,
            decided_at=row.decided_at,
            warned=row.sla_warned_at is not None,
            escalated=row.escalated_at is not None,
        )
        for row in rows
    ]
    return SlaMetrics.model_validate(
        {
            **_figures(figures(cases, now)),
            "since": start,
            "until": end,
            "by_priority": {
                level: _figures(value) for level, value in by_priority(cases, now).items()
            },
        }
    )
