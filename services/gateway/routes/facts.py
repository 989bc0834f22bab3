"""`/exceptions` (list and streamed export) and `/loans`."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from contracts.loans import Disposition
from services.gateway.deps import CurrentUser, PagingDep, SessionDep, SessionMakerDep
from services.gateway.error_docs import documented
from services.gateway.errors import BadRequest
from services.gateway.exports import csv_stream, exception_rows, xlsx_stream
from services.gateway.paging import (
    BIGINT,
    INTEGER,
    SMALLINT,
    CursorType,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
)
from services.gateway.repository import facts as repo
from services.gateway.routes.outputs import attachment
from services.gateway.runs_service import visible_run
from services.gateway.schemas.common import NO_NUL, Page
from services.gateway.schemas.facts import ExceptionResponse, LoanResponse
from services.gateway.views import exception_response, loan_response

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


async def _filters(
    session: SessionDep,
    user: CurrentUser,
    run_id: UUID | None,
    exception_type: str | None,
    severity: str | None,
    rejection_criteria: str | None,
) -> repo.ExceptionFilters:
    if run_id is not None:
        await visible_run(session, user, run_id)
    return repo.ExceptionFilters(run_id, exception_type, severity, rejection_criteria)


Severity = Annotated[Literal["hard", "soft"] | None, Query()]
Text = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]


@router.get("/exceptions", response_model=Page[ExceptionResponse])
async def list_exceptions(
    user: CurrentUser,
    session: SessionDep,
    paging: PagingDep,
    run_id: UUID | None = None,
    exception_type: Text = None,
    severity: Severity = None,
    rejection_criteria: Text = None,
) -> Page[ExceptionResponse]:
    """Exceptions you may see, newest run first (each run in tape order), filtered."""
    filters = await _filters(session, user, run_id, exception_type, severity, rejection_criteria)
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
        items=[exception_response(row) for row in rows],
        skip=paging.skip,
        limit=paging.limit,
        next_cursor=cursor,
    )


@router.get("/exceptions/export", response_class=StreamingResponse)
async def export_exceptions(
    user: CurrentUser,
    session: SessionDep,
    sessions: SessionMakerDep,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
    limit: Annotated[int, Query(ge=1, le=50_000)] = 10_000,
    run_id: UUID | None = None,
    exception_type: Text = None,
    severity: Severity = None,
    rejection_criteria: Text = None,
) -> StreamingResponse:
    """The filtered exceptions as a streamed CSV or XLSX attachment (at most 50,000 rows)."""
    filters = await _filters(session, user, run_id, exception_type, severity, rejection_criteria)
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
