"""`/loans/{loan_id}/history` and `/runs/{run_id}/stages`."""

from uuid import UUID

from fastapi import APIRouter

from services.gateway.deps import CurrentUser, SessionDep, SettingsDep
from services.gateway.governance.scope import visible_loan
from services.gateway.lineage import history, service
from services.gateway.lineage.schemas import LoanHistory, StagesResponse
from services.gateway.runs.service import visible_run

router = APIRouter(tags=["lineage"])


@router.get("/loans/{loan_id}/history", response_model=LoanHistory)
async def loan_history(
    loan_id: UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> LoanHistory:
    """Every event about the loan in order, each with its topic, partition and offset and the
    loan's source file and row; 404 if the loan is not yours to see."""
    loan = await visible_loan(session, user, loan_id)
    return LoanHistory(
        loan_id=loan.loan_id,
        run_id=loan.run_id,
        seller_loan_number=loan.seller_loan_number,
        source_file=loan.source_file,
        row=loan.row,
        events=await history.history(session, settings, loan),
    )


@router.get("/runs/{run_id}/stages", response_model=StagesResponse)
async def run_stages(
    run_id: UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> StagesResponse:
    """Per stage: records in and out, failed, and the loan ids held up between stages."""
    run = await visible_run(session, user, run_id)
    return await service.stages(session, settings, run)
