"""`/loans/{loan_id}/corrections` and `/runs/{run_id}/corrections`."""

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter

from services.gateway.corrections import repository as repo
from services.gateway.corrections.schemas import CorrectionRequest, CorrectionResponse
from services.gateway.corrections.service import record_correction, response_of_row
from services.gateway.deps import CurrentUser, PagingDep, PublisherDep, SessionDep
from services.gateway.error_docs import documented
from services.gateway.governance.scope import cursor_key, visible_loan
from services.gateway.paging import Page, encode_cursor
from services.gateway.runs.service import visible_run

router = APIRouter(tags=["corrections"])
CURSOR = "corrections"


@router.post(
    "/loans/{loan_id}/corrections",
    status_code=202,
    response_model=CorrectionResponse,
    responses=documented(400, 503),
)
async def correct_loan(
    loan_id: UUID,
    body: CorrectionRequest,
    user: CurrentUser,
    session: SessionDep,
    publisher: PublisherDep,
) -> CorrectionResponse:
    """Record new text for a loan's field (applied by a reprocess with apply_corrections)."""
    return await record_correction(session, publisher, user, loan_id, body)


@router.get("/loans/{loan_id}/corrections", response_model=list[CorrectionResponse])
async def loan_corrections(
    loan_id: UUID, user: CurrentUser, session: SessionDep
) -> list[CorrectionResponse]:
    """A loan's corrections, oldest first; 404 if the loan is not yours to see."""
    await visible_loan(session, user, loan_id)
    return [response_of_row(row) for row in await repo.list_for_loan(session, loan_id)]


@router.get(
    "/runs/{run_id}/corrections",
    response_model=Page[CorrectionResponse],
    responses=documented(400),
)
async def run_corrections(
    run_id: UUID, user: CurrentUser, session: SessionDep, paging: PagingDep
) -> Page[CorrectionResponse]:
    """Corrections of a run's loans, oldest first; 404 if the run is not yours to see."""
    await visible_run(session, user, run_id)
    after = cursor_key(CURSOR, paging.after, (datetime, UUID))
    rows = await repo.list_for_run(
        session,
        run_id,
        skip=paging.skip,
        limit=paging.limit,
        after=after,
    )
    cursor = (
        encode_cursor(CURSOR, (rows[-1].corrected_at, rows[-1].correction_id))
        if len(rows) == paging.limit
        else None
    )
    items = [response_of_row(row) for row in rows]
    return Page(items=items, skip=paging.skip, limit=paging.limit, next_cursor=cursor)
