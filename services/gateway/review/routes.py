"""`/review/queue`, its summary, `/review/cases/{case_id}` and its actions (SPEC §8)."""

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from contracts.reviews import CaseStatus, Priority
from services.gateway.deps import (
    CurrentUser,
    PublisherDep,
    SessionDep,
    SettingsDep,
    require_roles,
)
from services.gateway.error_docs import documented
from services.gateway.identity.principal import Principal
from services.gateway.review import repository as repo
from services.gateway.review import service
from services.gateway.review.domain import Action
from services.gateway.review.queue import Sort
from services.gateway.review.schemas import (
    CaseActionRequest,
    CaseDetail,
    DecisionBody,
    DecisionView,
    OverrideReviewBody,
    QueuePage,
    QueueSummary,
    SlaMetrics,
)

router = APIRouter(prefix="/review", tags=["review"])
ActionPath = Annotated[Action, Path(description="The lifecycle action.")]
SeniorUser = Annotated[Principal, Depends(require_roles("senior_analyst", "admin"))]


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/queue", response_model=QueuePage)
async def review_queue(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    status: Annotated[CaseStatus | None, Query(description="Open cases when left out.")] = None,
    analyst: Annotated[UUID | None, Query(description="Cases assigned to this user.")] = None,
    priority: Priority | None = None,
    sort: Annotated[Sort, Query(description="priority, created or deadline.")] = "priority",
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> QueuePage:
    """Review cases in scope, highest priority first by default."""
    return await service.queue(
        session,
        user,
        settings,
        status=status,
        analyst=analyst,
        priority=priority,
        sort=sort,
        skip=skip,
        limit=limit,
        now=_now(),
    )


@router.get("/queue/summary", response_model=QueueSummary)
async def review_queue_summary(
    user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> QueueSummary:
    """Counts of the open cases in scope: by status, SLA state and priority."""
    counts = await service.summary(session, user, settings, _now())
    return QueueSummary(
        total_pending=counts.total_pending,
        total_assigned=counts.total_assigned,
        total_in_progress=counts.total_in_progress,
        approaching_sla=counts.approaching_sla,
        breached_sla=counts.breached_sla,
        by_priority=counts.by_priority,
    )


@router.get("/sla-metrics", response_model=SlaMetrics, responses=documented(400))
async def review_sla_metrics(
    user: CurrentUser,
    session: SessionDep,
    since: Annotated[
        datetime | None, Query(description="Cases opened from (default: 30 days before until).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Cases opened before (default: now).")
    ] = None,
) -> SlaMetrics:
    """On-time rate, breaches, warnings, escalations and time to decision of the cases opened in
    the window, overall and by priority."""
    return await service.sla_metrics(session, user, since, until, _now())


@router.get("/cases/{case_id}", response_model=CaseDetail)
async def review_case(
    case_id: UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> CaseDetail:
    """A case: score, factors, the loan, its exceptions, 5 similar decided loans, history."""
    return await service.detail(session, user, settings, case_id, _now())


def _answer(folded: bool, detail: CaseDetail) -> JSONResponse:
    return JSONResponse(detail.model_dump(mode="json"), status_code=200 if folded else 202)


# Declared before `/cases/{case_id}/{action}`, which would otherwise take `decision`.
@router.post(
    "/cases/{case_id}/decision",
    response_model=CaseDetail,
    responses={
        202: {"description": "Published; not yet folded into the read model."},
        **documented(400, 403, 409, 503),
    },
)
async def review_decision(
    case_id: UUID,
    body: DecisionBody,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    publisher: PublisherDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Decide a case in progress (its assignee): approve, approve with conditions or decline.

    400 when the outcome lacks its terms, conditions or reasoning, or an override lacks a
    50-character justification; an override waits for a second person (`override_pending`)."""
    folded = await service.decide_case(
        session,
        publisher,
        user,
        settings,
        case_id,
        body,
        getattr(request.state, "request_id", None),
        _now(),
    )
    return _answer(folded, await service.detail(session, user, settings, case_id, _now()))


@router.post(
    "/cases/{case_id}/{action}",
    response_model=CaseDetail,
    responses={
        202: {"description": "Published; not yet folded into the read model."},
        **documented(400, 403, 409, 503),
    },
)
async def review_case_action(
    case_id: UUID,
    action: ActionPath,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    publisher: PublisherDep,
    settings: SettingsDep,
    body: CaseActionRequest | None = None,
) -> JSONResponse:
    """Assign (yourself by default), start or release a case.

    409 when the status does not allow the action or the assignee already holds 5 active
    cases; 403 for a role that may not act, or an analyst acting on another's case."""
    folded = await service.act(
        session,
        publisher,
        user,
        case_id,
        action,
        body or CaseActionRequest(),
        getattr(request.state, "request_id", None),
        settings.review_wait_seconds,
        _now(),
    )
    answer = await service.detail(session, user, settings, case_id, _now())
    return JSONResponse(answer.model_dump(mode="json"), status_code=200 if folded else 202)


@router.get("/pending-overrides", response_model=list[DecisionView])
async def pending_overrides(user: SeniorUser, session: SessionDep) -> list[DecisionView]:
    """Decisions against the model awaiting a second person's approval, oldest first."""
    rows = await repo.decisions_with_status(session, "override_pending", user.team_scope, 1000)
    return [service.decision_view(row) for row in rows]


@router.post(
    "/decisions/{decision_id}/{verdict}",
    response_model=CaseDetail,
    responses={
        202: {"description": "Published; not yet folded into the read model."},
        **documented(400, 403, 409, 503),
    },
)
async def override_verdict(
    decision_id: UUID,
    verdict: Annotated[Literal["approve-override", "reject-override"], Path()],
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    publisher: PublisherDep,
    settings: SettingsDep,
    body: OverrideReviewBody | None = None,
) -> JSONResponse:
    """Approve or reject (with notes) a pending override; a different senior analyst or admin.

    A rejection sends the case back to its analyst (in_progress) to decide again."""
    folded = await service.review_override(
        session,
        publisher,
        user,
        settings,
        decision_id,
        verdict == "approve-override",
        (body or OverrideReviewBody()).notes,
        getattr(request.state, "request_id", None),
        _now(),
    )
    decision = await repo.get_decision(session, decision_id, user.team_scope)
    assert decision is not None and decision.case_id is not None
    detail = await service.detail(session, user, settings, decision.case_id, _now())
    return _answer(folded, detail)


@router.post(
    "/decisions/{decision_id}/conditions/{ordinal}/fulfil",
    response_model=CaseDetail,
    responses={
        202: {"description": "Published; not yet folded into the read model."},
        **documented(400, 403, 409, 503),
    },
)
async def fulfil_condition(
    decision_id: UUID,
    ordinal: Annotated[int, Path(ge=1, le=50, description="The condition, from 1.")],
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    publisher: PublisherDep,
    settings: SettingsDep,
    body: OverrideReviewBody | None = None,
) -> JSONResponse:
    """Mark one condition of an approval fulfilled."""
    folded = await service.fulfil_condition(
        session,
        publisher,
        user,
        settings,
        decision_id,
        ordinal,
        (body or OverrideReviewBody()).notes,
        getattr(request.state, "request_id", None),
        _now(),
    )
    decision = await repo.get_decision(session, decision_id, user.team_scope)
    assert decision is not None and decision.case_id is not None
    detail = await service.detail(session, user, settings, decision.case_id, _now())
    return _answer(folded, detail)
