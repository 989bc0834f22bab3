"""`/runs/{run_id}/diff`: what a reprocess changed against its parent."""

from uuid import UUID

from fastapi import APIRouter

from services.gateway.deps import CurrentUser, PagingDep, SessionDep
from services.gateway.errors import Conflict
from services.gateway.reprocess import repository as repo
from services.gateway.reprocess.diff import diff, outcome_of, page
from services.gateway.reprocess.schemas import DiffResponse, LoanChange
from services.gateway.runs_service import visible_run

router = APIRouter(tags=["runs"])


@router.get("/runs/{run_id}/diff", response_model=DiffResponse)
async def run_diff(
    run_id: UUID, user: CurrentUser, session: SessionDep, paging: PagingDep
) -> DiffResponse:
    """Per loan whose outcome changed against the parent: disposition, exceptions and price
    before and after; counts by transition. 409 for a run that is not a reprocess."""
    child = await visible_run(session, user, run_id)
    if child.parent_run_id is None:
        raise Conflict("This run is not a reprocess: it has no parent to compare with")
    after = [outcome_of(row) for row in await repo.outcomes(session, run_id)]
    before = [outcome_of(row) for row in await repo.outcomes(session, child.parent_run_id)]
    partial = child.total_loans is not None and child.total_loans < len(before)
    result = diff(after, before, partial=partial)
    return DiffResponse(
        run_id=run_id,
        parent_run_id=child.parent_run_id,
        counts=result.counts,
        changes=[
            LoanChange(
                loan_id=change.after.loan_id,
                parent_loan_id=change.before.loan_id if change.before else None,
                seller_loan_number=change.after.seller_loan_number,
                source_file=change.after.source_file,
                row=change.after.row,
                disposition_before=change.before.disposition if change.before else None,
                disposition_after=change.after.disposition,
                exceptions_added=change.exceptions_added,
                exceptions_removed=change.exceptions_removed,
                price_before=change.before.final_price if change.before else None,
                price_after=change.after.final_price,
            )
            for change in page(result.changes, paging.skip, paging.limit)
        ],
        skip=paging.skip,
        limit=paging.limit,
    )
