"""`/runs/{run_id}/diff`: what a reprocess changed against its parent."""

from uuid import UUID

from fastapi import APIRouter

from services.gateway.deps import CurrentUser, PagingDep, SessionDep
from services.gateway.error_docs import documented
from services.gateway.reprocess import service
from services.gateway.reprocess.schemas import DiffResponse
from services.gateway.runs.service import visible_run

router = APIRouter(tags=["runs"])


@router.get("/runs/{run_id}/diff", response_model=DiffResponse, responses=documented(409))
async def run_diff(
    run_id: UUID, user: CurrentUser, session: SessionDep, paging: PagingDep
) -> DiffResponse:
    """Per loan whose outcome changed against the parent: disposition, exceptions and price
    before and after; counts by transition. 409 for a run that is not a reprocess or has not
    completed yet."""
    child = await visible_run(session, user, run_id)
    return await service.run_diff(session, child, paging.skip, paging.limit)
