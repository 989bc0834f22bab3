"""`/dq/summary`, `/dq/failures` and `/dq/trend`: data quality per run and over time."""

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from contracts.quality import run_quality
from services.gateway.deps import CurrentUser, PagingDep, SessionDep
from services.gateway.dq import repository as repo
from services.gateway.dq import service
from services.gateway.dq.rules_total import rules_total_of_run
from services.gateway.dq.schemas import DqFailure, DqSummary, DqTrendPoint
from services.gateway.error_docs import documented
from services.gateway.errors import BadRequest
from services.gateway.governance.scope import cursor_key
from services.gateway.paging import INTEGER, Page, encode_cursor
from services.gateway.patterns import IsoDateTime, decimal_between
from services.gateway.runs.service import visible_run

router = APIRouter(prefix="/dq", tags=["data quality"], responses=documented(400, 404))
FAILURES_CURSOR = "dq-failures"
RunIdQuery = Annotated[UUID, Query(description="The run.")]


@router.get("/summary", response_model=DqSummary)
async def dq_summary(run_id: RunIdQuery, user: CurrentUser, session: SessionDep) -> DqSummary:
    """A run's four quality dimensions, per-field completeness and validity %, score bands."""
    await visible_run(session, user, run_id)
    return await service.summary(session, run_id)


@router.get("/failures", response_model=Page[DqFailure])
async def dq_failures(
    run_id: RunIdQuery,
    user: CurrentUser,
    session: SessionDep,
    paging: PagingDep,
    max_score: Annotated[
        decimal_between(0, 100), Query(description="Loans with dq_score at most this.")
    ] = Decimal("75"),
) -> Page[DqFailure]:
    """A run's loans at or below `max_score`, weakest first, with what lowers each score."""
    await visible_run(session, user, run_id)
    key = cursor_key(FAILURES_CURSOR, paging.after, (str, INTEGER))
    after = None if key is None else (Decimal(str(key[0])), int(str(key[1])))
    rows = await repo.failures(
        session, run_id, max_score, skip=paging.skip, limit=paging.limit, after=after
    )
    cursor = (
        encode_cursor(FAILURES_CURSOR, (str(rows[-1].dq_score), rows[-1].seq))
        if len(rows) == paging.limit
        else None
    )
    items = [service.failure(row) for row in rows]
    return Page(items=items, skip=paging.skip, limit=paging.limit, next_cursor=cursor)


@router.get("/trend", response_model=list[DqTrendPoint])
async def dq_trend(
    user: CurrentUser,
    session: SessionDep,
    start: Annotated[
        IsoDateTime | None, Query(alias="from", description="Runs created from.")
    ] = None,
    end: Annotated[
        IsoDateTime | None, Query(alias="to", description="Runs created before.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DqTrendPoint]:
    """Per-run quality means over time (runs you may see, oldest first)."""
    if start is not None and end is not None and end < start:
        raise BadRequest("`to` must not be before `from`")
    points = []
    for row in await repo.runs_between(session, user.team_scope, start, end, limit):
        rules_total = await rules_total_of_run(session, row.run_id)
        means = run_quality(repo.sums_of_row(row), rules_total)
        points.append(
            DqTrendPoint(
                run_id=row.run_id,
                created_at=row.created_at,
                status=row.status,
                loans=int(row.loans),
                dimensions=service.dimensions(means),
            )
        )
    return points
