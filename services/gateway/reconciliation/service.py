"""Reconciling a run: its archived source rows, normalised as ingest reads them (with a
reprocess's corrections and row filter), against its projected facts and its report rows.

Run automatically by the projector process for every completed run (job.py) and on demand
through `POST /runs/{id}/reconciliation`; the latest result replaces the previous one.
"""

from __future__ import annotations

import csv
import logging
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import UUID, uuid5

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.ids import NS
from contracts.loans import LOAN_FIELDS
from contracts.runs import ReprocessEdits
from contracts.wire import LoanRecord
from services.common.governance_metrics import set_reconciliation_findings
from services.common.storage import Storage, safe_key
from services.gateway.reconciliation import repository as repo
from services.gateway.reconciliation.domain import (
    REPORT_OF,
    Finding,
    ProjectedLoan,
    Reconciler,
    Rows,
    SourceLoan,
)

# The archive is read exactly as ingest reads a tape: the same readers and normaliser.
from services.ingest.domain import DuplicateIndex, Normaliser
from services.ingest.duplicates import SqliteDuplicateIndex
from services.ingest.edits import RowEdits
from services.ingest.readers import read_rows

logger = logging.getLogger(__name__)
LOAN_REPORTS = tuple(REPORT_OF.values())


def finding_id(run_id: UUID, locator: str) -> UUID:
    """A finding's id: the same for the same record of the same run on every reconciliation."""
    return uuid5(NS, f"{run_id}/reconciliation/{locator}")


async def reconcile(session: AsyncSession, storage: Storage, run_id: UUID) -> dict[str, Any]:
    """Reconcile one run, store the result (the caller commits) and return its summary."""
    reconciler: Reconciler | None = None
    error = None
    try:
        reconciler = await _check(session, storage, run_id)
    except Exception as failure:  # unreadable archive or reports: recorded, never raised
        logger.warning(
            "reconciliation failed", extra={"run_id": str(run_id), "error": repr(failure)[:300]}
        )
        error = f"the run's archive or reports could not be read ({type(failure).__name__})"
    counts = reconciler.counts if reconciler else {}
    found = reconciler.findings if reconciler else []
    summary = {
        "status": "error" if error else ("findings" if found else "clean"),
        **{kind: int(counts.get(kind, 0)) for kind in ("matched", "mismatched")},
        "source_only": int(counts.get("source_only", 0)),
        "downstream_only": int(counts.get("downstream_only", 0)),
        "error": error,
        "reconciled_at": datetime.now(UTC),
    }
    await repo.store(session, run_id, summary, [_row(run_id, i, f) for i, f in enumerate(found)])
    return summary


async def refresh_metric(session: AsyncSession) -> None:
    """Set `loan_engine_reconciliation_findings` from the stored results."""
    set_reconciliation_findings(await repo.open_findings_by_kind(session))


async def _check(session: AsyncSession, storage: Storage, run_id: UUID) -> Reconciler:
    """Stream the run's reports and archived inputs from files beside each other, never whole in
    memory (a million-loan run's purchase tape is ~110 MB; read as one string, the projector
    process that reconciles grew past 900 MB)."""
    stored = await repo.report_keys(session, run_id)
    edits = await repo.edits_of(session, run_id)
    row_edits = RowEdits.of(None if edits is None else ReprocessEdits.model_validate(edits))
    with tempfile.TemporaryDirectory(prefix="reconcile-") as folder, ExitStack() as files:
        outputs, inputs = Path(folder) / "output", Path(folder) / "input"
        outputs.mkdir()
        inputs.mkdir()
        reports = {}
        for key in LOAN_REPORTS:
            path = outputs / f"{key}.csv"
            await storage.download_to(stored[key], path)
            rows = csv.reader(files.enter_context(path.open(encoding="utf-8", newline="")))
            next(rows, None)  # the header
            reports[key] = Rows(key, rows)
        reconciler = Reconciler(reports)
        sources = await _download_inputs(storage, run_id, inputs)
        duplicates = files.enter_context(SqliteDuplicateIndex(Path(folder)))
        source_iter = files.enter_context(
            closing(_source_loans(run_id, sources, row_edits, duplicates))
        )
        pending = next(source_iter, None)
        async for row in repo.projected(session, run_id):
            projected = _projected(row)
            while pending is not None and pending.seq < projected.seq:
                reconciler.loan(pending, None)
                pending = next(source_iter, None)
            if pending is not None and pending.seq == projected.seq:
                reconciler.loan(pending, projected)
                pending = next(source_iter, None)
            else:
                reconciler.loan(None, projected)
        while pending is not None:
            reconciler.loan(pending, None)
            pending = next(source_iter, None)
        reconciler.finish()  # report rows no loan accounted for: read while the files are open
    return reconciler


async def _download_inputs(storage: Storage, run_id: UUID, folder: Path) -> list[Path]:
    prefix = safe_key("archive", str(run_id), "input")
    names = sorted(
        name
        for obj in await storage.list(prefix)
        if "/" not in (name := obj.key[len(prefix) :].lstrip("/"))
        and PurePosixPath(name).suffix.lower() in (".csv", ".xlsx")
    )
    paths = []
    for name in names:
        path = folder / name
        await storage.download_to(safe_key(prefix, name), path)
        paths.append(path)
    return paths


def _source_loans(
    run_id: UUID, paths: list[Path], edits: RowEdits | None, duplicates: DuplicateIndex
) -> Iterator[SourceLoan]:
    normaliser = Normaliser(run_id, duplicates, edits)
    for path in paths:
        with path.open("rb") as stream, closing(read_rows(path.name, stream)) as rows:
            for record in normaliser.file(path.name, rows):
                yield _source(record)


def _source(record: LoanRecord) -> SourceLoan:
    return SourceLoan(
        seq=record.seq,
        source_file=record.source_file,
        row=record.row,
        fields=msgspec.structs.asdict(record.fields),
        invalid=frozenset(record.invalid),
    )


def _projected(row: Any) -> ProjectedLoan:
    return ProjectedLoan(
        seq=row.seq,
        loan_id=str(row.loan_id),
        source_file=row.source_file,
        row=row.row,
        fields={name: getattr(row, name) for name in LOAN_FIELDS},
        disposition=row.disposition,
        pricing_spread=row.pricing_spread,
        final_price=row.final_price,
        exceptions_count=row.exceptions_count,
    )


def _row(run_id: UUID, ordinal: int, finding: Finding) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "ordinal": ordinal,
        "finding_id": finding_id(run_id, finding.locator),
        "kind": finding.kind,
        "locator": finding.locator,
        "seq": finding.seq,
        "loan_id": UUID(finding.loan_id) if finding.loan_id else None,
        "source_file": finding.source_file,
        "row": finding.row,
        "seller_loan_number": finding.seller_loan_number,
        "fields": [asdict(diff) for diff in finding.fields],
    }
