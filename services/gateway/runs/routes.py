"""`/runs`: list, one run, its progress, retry and reprocess."""

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.gateway.deps import CurrentUser, PagingDep, PublisherDep, SessionDep
from services.gateway.error_docs import documented
from services.gateway.errors import BadRequest
from services.gateway.paging import InvalidCursor, Page, decode_cursor, encode_cursor
from services.gateway.runs import repository as repo
from services.gateway.runs.domain import RunStatus, state_from_mapping
from services.gateway.runs.schemas import ProgressResponse, ReprocessRequest, RunResponse
from services.gateway.runs.service import reprocess_run, retry_run, visible_run
from services.gateway.runs.views import progress_response, run_response

router = APIRouter(prefix="/runs", tags=["runs"])
CURSOR = "runs"


@router.get("", response_model=Page[RunResponse], responses=documented(400))
async def list_runs(
    user: CurrentUser,
    session: SessionDep,
    paging: PagingDep,
    status: RunStatus | None = None,
    run_weekday: Annotated[int | None, Query(ge=0, le=6, description="0 = Monday.")] = None,
) -> Page[RunResponse]:
    """Runs you may see, newest first, filtered by status and weekday."""
    after = None
    if paging.after:
        try:
            after = decode_cursor(CURSOR, paging.after, (datetime, UUID))
        except InvalidCursor as error:
            raise BadRequest("Invalid cursor") from error
    rows = await repo.list_runs(
        session,
        team_scope=user.team_scope,
        status=status,
        run_weekday=run_weekday,
        skip=paging.skip,
        limit=paging.limit,
        after=after,  # type: ignore[arg-type]
    )
    items = [run_response(state_from_mapping(row._mapping)) for row in rows]
    cursor = (
        encode_cursor(CURSOR, (rows[-1].created_at, rows[-1].run_id))
        if len(rows) == paging.limit
        else None
    )
    return Page(items=items, skip=paging.skip, limit=paging.limit, next_cursor=cursor)


@router.get("/{run_id}", response_model=RunResponse)
async def get_run(run_id: UUID, user: CurrentUser, session: SessionDep) -> RunResponse:
    """One run; 404 if it does not exist or is not yours to see."""
    return run_response(await visible_run(session, user, run_id))


@router.get("/{run_id}/progress", response_model=ProgressResponse)
async def get_progress(run_id: UUID, user: CurrentUser, session: SessionDep) -> ProgressResponse:
    """Per-phase progress, the overall percentage and the estimated seconds left."""
    state = await visible_run(session, user, run_id)
    stages = await repo.stage_counts(session, run_id)
    reports = len(await repo.report_rows(session, run_id))
    return progress_response(state, stages, reports, datetime.now(UTC))


@router.post(
    "/{run_id}/retry", status_code=202, response_model=RunResponse, responses=documented(409, 503)
)
async def retry(
    run_id: UUID, user: CurrentUser, session: SessionDep, publisher: PublisherDep
) -> RunResponse:
    """Resume a failed run from its failed phase (409 unless it failed)."""
    return run_response(await retry_run(session, publisher, user, run_id))


@router.post(
    "/{run_id}/reprocess",
    status_code=202,
    response_model=RunResponse,
    responses=documented(400, 409, 503),
)
async def reprocess(
    run_id: UUID,
    user: CurrentUser,
    session: SessionDep,
    publisher: PublisherDep,
    body: ReprocessRequest | None = None,
) -> RunResponse:
    """A new run (its `parent_run_id` is this run) over this run's archived inputs."""
    request = body or ReprocessRequest()
    return run_response(await reprocess_run(session, publisher, user, run_id, request))
