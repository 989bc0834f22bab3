"""`/exceptions/{exception_id}` and its actions, one by one or in bulk (SPEC §7)."""

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from services.gateway.deps import CurrentUser, PublisherDep, SessionDep, SettingsDep
from services.gateway.error_docs import documented
from services.gateway.errors import BadRequest, NotFound
from services.gateway.facts.routes import ExceptionQuery, exception_filters
from services.gateway.facts.views import exception_response
from services.gateway.triage import repository as repo
from services.gateway.triage import service
from services.gateway.triage.domain import Action
from services.gateway.triage.schemas import (
    ActionEntry,
    ActionRequest,
    BulkRequest,
    BulkResponse,
    ExceptionDetail,
)

router = APIRouter(prefix="/exceptions", tags=["triage"])
ActionPath = Annotated[Action, Path(description="The lifecycle action.")]


async def _detail(session: SessionDep, user: CurrentUser, exception_id: UUID) -> ExceptionDetail:
    row = await repo.get_exception(session, exception_id, user.team_scope)
    if row is None:
        raise NotFound("Exception not found")
    history = await repo.history(session, exception_id)
    base = exception_response(row, datetime.now(UTC))
    return ExceptionDetail(
        **base.model_dump(),
        waiver_requested_by=row.waiver_requested_by,
        closed_at=row.closed_at,
        history=[ActionEntry.model_validate(entry, from_attributes=True) for entry in history],
    )


# Declared before `/{exception_id}/{action}`, which would otherwise take `bulk` for an id.
@router.post("/bulk/{action}", response_model=BulkResponse, responses=documented(400, 403, 503))
async def bulk_action(
    action: ActionPath,
    body: BulkRequest,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    publisher: PublisherDep,
    settings: SettingsDep,
) -> BulkResponse:
    """One action on up to 10,000 exceptions (by id or by filter): one event each."""
    if not body.selects_once:
        raise BadRequest("give exactly one of exception_ids or filter")
    filters = None
    if body.filter is not None:
        query = ExceptionQuery(**body.filter.model_dump())
        filters = await exception_filters(session, user, query)
    return await service.bulk(
        session,
        publisher,
        user,
        action,
        body,
        filters,
        getattr(request.state, "request_id", None),
        settings.triage_wait_seconds,
    )


@router.get("/{exception_id}", response_model=ExceptionDetail)
async def get_exception(
    exception_id: UUID, user: CurrentUser, session: SessionDep
) -> ExceptionDetail:
    """One exception with its status, assignee, SLA age and full action history."""
    return await _detail(session, user, exception_id)


@router.post(
    "/{exception_id}/{action}",
    response_model=ExceptionDetail,
    responses={
        202: {"description": "Published; not yet folded into the read model."},
        **documented(400, 403, 409, 503),
    },
)
async def exception_action(
    exception_id: UUID,
    action: ActionPath,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    publisher: PublisherDep,
    settings: SettingsDep,
    body: ActionRequest | None = None,
) -> JSONResponse:
    """Acknowledge, assign, start, comment, resolve, waive, reopen, approve or reject a waiver.

    409 when the exception's current status does not allow the action (the message names it),
    403 for approving one's own waiver or a role that may not act."""
    folded = await service.act(
        session,
        publisher,
        user,
        exception_id,
        action,
        body or ActionRequest(),
        getattr(request.state, "request_id", None),
        settings.triage_wait_seconds,
    )
    detail = await _detail(session, user, exception_id)
    return JSONResponse(detail.model_dump(mode="json"), status_code=200 if folded else 202)
