"""`/runs/{run_id}/reconciliation`: the latest result, run it again, accept or flag findings."""

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.corrections import FindingReviewed
from contracts.ids import event_id
from contracts.run_fold import DONE
from contracts.topics import CORRECTIONS
from services.gateway.deps import (
    CurrentUser,
    Paging,
    PagingDep,
    PublisherDep,
    SessionDep,
    StorageDep,
)
from services.gateway.error_docs import documented
from services.gateway.errors import Conflict, Forbidden, NotFound, Unavailable
from services.gateway.governance.scope import cursor_key
from services.gateway.identity.principal import Principal
from services.gateway.paging import INTEGER, Page, encode_cursor
from services.gateway.reconciliation import repository as repo
from services.gateway.reconciliation.schemas import (
    Counts,
    FindingResponse,
    ReconciliationResponse,
    ReviewRequest,
    ReviewResponse,
)
from services.gateway.reconciliation.service import reconcile, refresh_metric
from services.gateway.runs.service import visible_run

router = APIRouter(prefix="/runs/{run_id}/reconciliation", tags=["reconciliation"])
CURSOR = "reconciliation"
REVIEWING_ROLES = frozenset({"admin", "analyst", "senior_analyst"})
KindQuery = Annotated[
    Literal["mismatched", "source_only", "downstream_only"] | None,
    Query(description="Only findings of this kind."),
]


def _staff(user: Principal) -> None:
    if user.role not in REVIEWING_ROLES:
        raise Forbidden("Only analysts and admins reconcile runs and review findings")


async def _response(
    session: AsyncSession, run_id: UUID, kind: str | None, paging: Paging
) -> ReconciliationResponse:
    summary = await repo.get_summary(session, run_id)
    after = cursor_key(CURSOR, paging.after, (INTEGER,))
    rows = await repo.list_findings(
        session,
        run_id,
        kind,
        skip=paging.skip,
        limit=paging.limit,
        after=None if after is None else int(str(after[0])),
    )
    cursor = encode_cursor(CURSOR, (rows[-1].ordinal,)) if len(rows) == paging.limit else None
    findings = [
        FindingResponse(
            finding_id=row.finding_id,
            kind=row.kind,
            locator=row.locator,
            seq=row.seq,
            loan_id=row.loan_id,
            source_file=row.source_file,
            row=row.row,
            seller_loan_number=row.seller_loan_number,
            fields=row.fields,
            review=row.action,
            review_notes=row.notes,
            reviewed_by=row.reviewed_by,
            reviewed_at=row.reviewed_at,
        )
        for row in rows
    ]
    counts = Counts(
        matched=summary.matched if summary else 0,
        mismatched=summary.mismatched if summary else 0,
        source_only=summary.source_only if summary else 0,
        downstream_only=summary.downstream_only if summary else 0,
    )
    return ReconciliationResponse(
        run_id=run_id,
        status=summary.status if summary else "pending",
        counts=counts,
        error=summary.error if summary else None,
        reconciled_at=summary.reconciled_at if summary else None,
        findings=Page(items=findings, skip=paging.skip, limit=paging.limit, next_cursor=cursor),
    )


@router.get("", response_model=ReconciliationResponse, responses=documented(400))
async def get_reconciliation(
    run_id: UUID, user: CurrentUser, session: SessionDep, paging: PagingDep, kind: KindQuery = None
) -> ReconciliationResponse:
    """The run's latest reconciliation (`pending` until one ran) and a page of findings."""
    await visible_run(session, user, run_id)
    return await _response(session, run_id, kind, paging)


@router.post("", response_model=ReconciliationResponse, responses=documented(400, 409))
async def run_reconciliation(
    run_id: UUID,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    paging: PagingDep,
) -> ReconciliationResponse:
    """Reconcile the run again now: every source row against its projected fact and reports."""
    run = await visible_run(session, user, run_id)
    _staff(user)
    if run.status not in DONE:
        raise Conflict(f"Only a completed run is reconciled (this one is {run.status})")
    await reconcile(session, storage, run_id)
    await session.commit()
    await refresh_metric(session)
    return await _response(session, run_id, None, paging)


@router.post(
    "/findings/{finding_id}/{action}",
    status_code=202,
    response_model=ReviewResponse,
    responses=documented(503),
)
async def review_finding(
    run_id: UUID,
    finding_id: UUID,
    action: Literal["accept", "flag"],
    body: ReviewRequest,
    user: CurrentUser,
    session: SessionDep,
    publisher: PublisherDep,
) -> ReviewResponse:
    """Accept a finding (notes say why) or flag it for correction; recorded as an event."""
    await visible_run(session, user, run_id)
    _staff(user)
    finding = await repo.get_finding(session, run_id, finding_id)
    if finding is None:
        raise NotFound("Finding not found")
    now = datetime.now(UTC)
    event = FindingReviewed(
        event_id=event_id("reconciliation.finding_reviewed", run_id, finding_id, now.isoformat()),
        run_id=run_id,
        occurred_at=now,
        producer="gateway",
        finding_id=finding_id,
        locator=finding.locator,
        loan_id=finding.loan_id,
        action=action,
        notes=body.notes,
        reviewed_by=user.username,
    )
    try:
        await publisher.publish(CORRECTIONS, str(run_id), event)
    except Exception as error:
        raise Unavailable("The event log is not reachable; try again") from error
    return ReviewResponse(
        finding_id=finding_id,
        run_id=run_id,
        action=action,
        notes=body.notes,
        reviewed_by=user.username,
        reviewed_at=now,
    )
