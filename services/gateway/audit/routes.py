"""`/admin/audit`: the audit log, filtered, keyset-paged, or as CSV (mounted admin-only)."""

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.gateway.audit import repository as repo
from services.gateway.audit.schemas import AuditEntry
from services.gateway.deps import PagingDep, SessionDep, SessionMakerDep
from services.gateway.error_docs import documented
from services.gateway.errors import BadRequest
from services.gateway.facts.exports import escape_cell
from services.gateway.paging import InvalidCursor, Page, decode_cursor, encode_cursor
from services.gateway.patterns import NO_NUL, IsoDateTime
from services.gateway.runs.outputs import attachment

router = APIRouter(tags=["admin"])
CURSOR = "audit"
CSV_COLUMNS = tuple(AuditEntry.model_fields)
PAGE_ROWS = 1000
Text = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]


def audit_filters(
    actor_id: UUID | None = None,
    action: Text = None,
    outcome: Annotated[Literal["success", "denied", "failed", "error"] | None, Query()] = None,
    source: Annotated[Literal["api", "cli"] | None, Query()] = None,
    request_id: Text = None,
    since: Annotated[
        IsoDateTime | None, Query(alias="from", description="From (inclusive).")
    ] = None,
    until: Annotated[IsoDateTime | None, Query(alias="to", description="To (exclusive).")] = None,
) -> repo.AuditFilters:
    """The filters of the audit log, as query parameters."""
    return repo.AuditFilters(actor_id, action, outcome, source, request_id, since, until)


FiltersDep = Annotated[repo.AuditFilters, Depends(audit_filters)]


@router.get("/audit", response_model=Page[AuditEntry], responses=documented(400))
async def list_audit(
    session: SessionDep, paging: PagingDep, filters: FiltersDep
) -> Page[AuditEntry]:
    """The audit log newest first, filtered; pass `next_cursor` as `after` for the next page."""
    after = None
    if paging.after is not None:
        try:
            after = decode_cursor(CURSOR, paging.after, (datetime, UUID))
        except InvalidCursor as error:
            raise BadRequest("Invalid cursor") from error
    rows = await repo.list_audit(session, filters, after, paging.limit)  # type: ignore[arg-type]
    cursor = (
        encode_cursor(CURSOR, (rows[-1].occurred_at, rows[-1].event_id))
        if len(rows) == paging.limit
        else None
    )
    return Page(
        items=[AuditEntry.model_validate(row, from_attributes=True) for row in rows],
        skip=0,
        limit=paging.limit,
        next_cursor=cursor,
    )


@router.get("/audit/export", response_class=StreamingResponse)
async def export_audit(
    sessions: SessionMakerDep,
    filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> StreamingResponse:
    """The filtered audit log as a streamed CSV attachment, newest first."""
    return StreamingResponse(
        _csv(sessions, filters, limit),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": attachment("audit_log.csv")},
    )


async def _csv(
    sessions: async_sessionmaker[AsyncSession], filters: repo.AuditFilters, limit: int
) -> AsyncIterator[bytes]:
    yield _line(CSV_COLUMNS)
    after: repo.AuditKey | None = None
    remaining = limit
    while remaining > 0:
        async with sessions() as session:
            rows = await repo.list_audit(session, filters, after, min(PAGE_ROWS, remaining))
        if not rows:
            return
        yield b"".join(_line([_cell(getattr(row, name)) for name in CSV_COLUMNS]) for row in rows)
        remaining -= len(rows)
        after = (rows[-1].occurred_at, rows[-1].event_id)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return escape_cell(str(value)) if value is not None else None


def _line(values: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if value is None else value for value in values])
    return buffer.getvalue().encode()
