"""`/summary/{run_id}`: a run's totals, dispositions, exceptions and data quality."""

from uuid import UUID

from fastapi import APIRouter

from services.gateway.deps import CurrentUser, SessionDep
from services.gateway.dq.rules_total import rules_total_of_run
from services.gateway.runs import repository as repo
from services.gateway.runs.schemas import SummaryResponse
from services.gateway.runs.service import visible_run
from services.gateway.runs.views import summary_response

router = APIRouter(prefix="/summary", tags=["summary"])


@router.get("/{run_id}", response_model=SummaryResponse)
async def get_summary(run_id: UUID, user: CurrentUser, session: SessionDep) -> SummaryResponse:
    """The run's summary (SPEC §4); 404 if it is not yours to see."""
    state = await visible_run(session, user, run_id)
    counts, sums = await repo.dispositioned_sums(session, run_id)
    exceptions = await repo.exception_counts(session, run_id)
    rules_total = await rules_total_of_run(session, run_id)
    return summary_response(state, counts, sums, exceptions, rules_total)
