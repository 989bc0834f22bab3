"""Streamed exception exports: CSV row by row, XLSX through openpyxl's write-only mode.

Memory stays flat whatever the size: rows are read in keyset pages, the CSV is sent as it is
written, and the workbook is written to a temporary file and streamed from it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.cells import guard
from services.gateway.facts.repository import (
    ExceptionFilters,
    exception_key,
    exceptions_query,
)
from services.gateway.facts.views import sla_age_seconds

COLUMNS = (
    "exception_id",
    "status",
    "assignee",
    "sla_age_seconds",
    "run_id",
    "loan_id",
    "seller_loan_number",
    "source_file",
    "row",
    "exception_type",
    "category",
    "severity",
    "message",
    "rejection_criteria",
    "disposition",
    "created_at",
)
PAGE_ROWS = 1000
CHUNK = 256 * 1024


def escape_cell(value: Any) -> Any:
    """A cell value safe to open in a spreadsheet: text that could start a formula gets a `'`."""
    return guard(value) if isinstance(value, str) else value


def _cells(row: Any, now: datetime) -> list[Any]:
    values: list[Any] = []
    for name in COLUMNS:
        value = sla_age_seconds(row, now) if name == "sla_age_seconds" else getattr(row, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif value is not None and not isinstance(value, int | str):
            value = str(value)
        values.append(escape_cell(value))
    return values


async def exception_rows(
    sessions: async_sessionmaker[AsyncSession],
    filters: ExceptionFilters,
    team_scope: str | None,
    limit: int,
) -> AsyncIterator[list[Any]]:
    """Up to `limit` exceptions as export cells, read page by page (keyset)."""
    after = None
    remaining = limit
    while remaining > 0:
        async with sessions() as session:
            query = exceptions_query(filters, team_scope, after).limit(min(PAGE_ROWS, remaining))
            page = list(await session.execute(query))
        if not page:
            return
        now = datetime.now(UTC)
        for row in page:
            yield _cells(row, now)
        remaining -= len(page)
        after = exception_key(page[-1])


def _csv_line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if value is None else value for value in values])
    return buffer.getvalue()


async def csv_stream(rows: AsyncIterator[list[Any]]) -> AsyncIterator[bytes]:
    """The export as CSV (UTF-8, header first), in chunks of about CHUNK bytes."""
    pending = [_csv_line(COLUMNS)]
    size = len(pending[0])
    async for row in rows:
        line = _csv_line(row)
        pending.append(line)
        size += len(line)
        if size >= CHUNK:
            yield "".join(pending).encode()
            pending, size = [], 0
    yield "".join(pending).encode()


def _xlsx_cell(value: Any) -> Any:
    # XML cannot carry most control characters; a tape cell holding one loses just those.
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def _append(sheet: Any, rows: Iterable[list[Any]]) -> None:
    for row in rows:
        sheet.append([_xlsx_cell(value) for value in row])


async def xlsx_stream(rows: AsyncIterator[list[Any]]) -> AsyncIterator[bytes]:
    """The export as an XLSX workbook, built on disk in write-only mode, then streamed."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("exceptions")
    sheet.append(list(COLUMNS))
    page: list[list[Any]] = []
    async for row in rows:
        page.append(row)
        if len(page) >= PAGE_ROWS:
            await asyncio.to_thread(_append, sheet, page)
            page = []
    await asyncio.to_thread(_append, sheet, page)
    with tempfile.TemporaryDirectory(prefix="export-") as folder:
        path = Path(folder) / "exceptions_export.xlsx"
        await asyncio.to_thread(workbook.save, path)
        with path.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
