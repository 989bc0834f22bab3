"""`/exceptions` (list and streamed export) and `/loans`."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.loans import Disposition
from contracts.triage import ExceptionStatus
from services.gateway.deps import CurrentUser, PagingDep, SessionDep, SessionMakerDep
from services.gateway.error_docs import documented
from services.gateway.errors import BadRequest
from services.gateway.facts import repository as repo
from services.gateway.facts.exports import csv_stream, exception_rows, xlsx_stream
from services.gateway.facts.schemas import ExceptionResponse, LoanResponse
from services.gateway.facts.views import exception_response, loan_response
from services.gateway.identity.principal import Principal
from services.gateway.paging import (
    BIGINT,
    INTEGER,
    SMALLINT,
    CursorType,
    InvalidCursor,
    Page,
    decode_cursor,
    encode_cursor,
)
from services.gateway.patterns import NO_NUL, decimal_between
from services.gateway.runs.outputs import attachment
from services.gateway.runs.service import visible_run

router = APIRouter(tags=["facts"], responses=documented(400, 404))
EXCEPTIONS_CURSOR = "exceptions"
LOANS_CURSOR = "loans"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cursor(
    kind: str, cursor: str | None, types: tuple[CursorType, ...]
) -> tuple[object, ...] | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(kind, cursor, types)
    except InvalidCursor as error:
        raise BadRequest("Invalid cursor") from error


Severity = Annotated[Literal["hard", "soft"] | None, Query()]
Text = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]


SlaHours = decimal_between(0, 1_000_000)


@dataclass(frozen=True, slots=True)
class ExceptionQuery:
    """The filters of `GET /exceptions` and its export, as query parameters."""

    run_id: UUID | None = None
    exception_type: Text = None
    severity: Severity = None
    rejection_criteria: Text = None
    status: Annotated[ExceptionStatus | None, Query(description="Lifecycle status.")] = None
    assignee: Annotated[UUID | None, Query(description="Assigned user id.")] = None
    loan_id: UUID | None = None
    min_sla_age_hours: Annotated[
        SlaHours | None, Query(description="SLA age at least this many hours.")
    ] = None
    max_sla_age_hours: Annotated[
        SlaHours | None, Query(description="SLA age at most this many hours.")
    ] = None


ExceptionQueryDep = Annotated[ExceptionQuery, Depends()]


def _hours(value: Decimal | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=float(value * 3600))


async def exception_filters(
    session: AsyncSession, user: Principal, query: ExceptionQuery
) -> repo.ExceptionFilters:
    """The repository filters of a query (404 for a run that is not the user's to see)."""
    if query.run_id is not None:
        await visible_run(session, user, query.run_id)
    return repo.ExceptionFilters(
        query.run_id,
        query.exception_type,
        query.severity,
        query.rejection_criteria,
        status=query.status,
        assignee=query.assignee,
        loan_id=query.loan_id,
        min_age=_hours(query.min_sla_age_hours),
        max_age=_hours(query.max_sla_age_hours),
        now=datetime.now(UTC),
    )


@router.get("/exceptions", response_model=Page[ExceptionResponse])
async def list_exceptions(
    user: CurrentUser,
    session: SessionDep,
    paging: PagingDep,
    query: ExceptionQueryDep,
) -> Page[ExceptionResponse]:
    """Exceptions you may see, newest run first (each run in tape order), filtered."""
    filters = await exception_filters(session, user, query)
    after = _cursor(EXCEPTIONS_CURSOR, paging.after, (BIGINT, UUID, INTEGER, SMALLINT))
    rows = await repo.list_exceptions(
        session,
        filters,
        team_scope=user.team_scope,
        skip=paging.skip,
        limit=paging.limit,
        after=after,  # type: ignore[arg-type]
    )
    cursor = (
        encode_cursor(EXCEPTIONS_CURSOR, repo.exception_key(rows[-1]))
        if len(rows) == paging.limit
        else None
    )
    return Page(
        items=[exception_response(row, filters.now or datetime.now(UTC)) for row in rows],
        skip=paging.skip,
        limit=paging.limit,
        next_cursor=cursor,
    )


@router.get("/exceptions/export", response_class=StreamingResponse)
async def export_exceptions(
    user: CurrentUser,
    session: SessionDep,
    sessions: SessionMakerDep,
    query: ExceptionQueryDep,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
    limit: Annotated[int, Query(ge=1, le=50_000)] = 10_000,
) -> StreamingResponse:
    """The filtered exceptions as a streamed CSV or XLSX attachment (at most 50,000 rows)."""
    filters = await exception_filters(session, user, query)
    await session.close()
    rows = exception_rows(sessions, filters, user.team_scope, limit)
    if format == "xlsx":
        body, media_type = xlsx_stream(rows), XLSX
    else:
        body, media_type = csv_stream(rows), "text/csv; charset=utf-8"
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": attachment(f"exceptions_export.{format}")},
    )


@router.get("/loans", response_model=Page[LoanResponse])
async def list_loans(
    user: CurrentUser,
    session: SessionDep,
    paging: PagingDep,
    run_id: Annotated[UUID, Query(description="The run whose loans to list (required).")],
    disposition: Disposition | None = None,
) -> Page[LoanResponse]:
    """A run's loans in tape order: their data, disposition, price and loan id."""
    await visible_run(session, user, run_id)
    after = _cursor(LOANS_CURSOR, paging.after, (INTEGER,))
    rows = await repo.list_loans(
        session,
        run_id=run_id,
        disposition=disposition,
        skip=paging.skip,
        limit=paging.limit,
        after_seq=after[0] if after else None,  # type: ignore[arg-type]
    )
    cursor = encode_cursor(LOANS_CURSOR, (rows[-1].seq,)) if len(rows) == paging.limit else None
    return Page(
        items=[loan_response(row) for row in rows],
        skip=paging.skip,
        limit=paging.limit,
        next_cursor=cursor,
    )
