"""`/review/queue`, its summary, `/review/cases/{case_id}` and its actions (SPEC §8)."""

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from contracts.reviews import CaseStatus, Priority
from services.gateway.deps import CurrentUser, PublisherDep, SessionDep, SettingsDep
from services.gateway.error_docs import documented
from services.gateway.review import service
from services.gateway.review.domain import Action
from services.gateway.review.queue import Sort
from services.gateway.review.schemas import CaseActionRequest, CaseDetail, QueuePage, QueueSummary

router = APIRouter(prefix="/review", tags=["review"])
ActionPath = Annotated[Action, Path(description="The lifecycle action.")]


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


@router.get("/cases/{case_id}", response_model=CaseDetail)
async def review_case(
    case_id: UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> CaseDetail:
    """A case: score, factors, the loan, its exceptions, 5 similar decided loans, history."""
    return await service.detail(session, user, settings, case_id, _now())


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
