"""Resolving a reprocess request against the read models: the rows it keeps and the corrections
it applies, so ingest needs nothing but the event (SPEC §7)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import rule_sets
from contracts.loans import RowRef
from contracts.run_fold import DONE
from contracts.runs import CellCorrection, ReprocessEdits
from services.gateway.corrections import repository as corrections
from services.gateway.errors import BadRequest, Conflict
from services.gateway.reconciliation import repository as reconciliation
from services.gateway.reconciliation.projection import edits_json
from services.gateway.reprocess import repository as repo
from services.gateway.reprocess.diff import diff, outcome_of, page
from services.gateway.reprocess.schemas import DiffResponse, LoanChange
from services.gateway.runs.domain import RunState
from services.gateway.runs.schemas import ReprocessRequest

SHOWN_UNKNOWN = 5


async def reprocess_edits(
    session: AsyncSession, parent: RunState, body: ReprocessRequest
) -> ReprocessEdits | None:
    """The edits a reprocess carries; None for a plain reprocess. 400 for unknown loans or an
    unknown rule-set version."""
    if body.rule_set_version is not None and body.rule_set_version not in rule_sets.versions():
        raise BadRequest(f"Unknown rule set version {body.rule_set_version!r}")
    if not body.apply_corrections and body.loan_ids is None:
        return None
    rows = None
    if body.loan_ids is not None:
        wanted = list(dict.fromkeys(body.loan_ids))
        found = await repo.rows_of_loans(session, parent.run_id, wanted)
        known = {row.loan_id for row in found}
        unknown = [str(loan_id) for loan_id in wanted if loan_id not in known]
        if unknown:
            shown = ", ".join(unknown[:SHOWN_UNKNOWN])
            raise BadRequest(f"{len(unknown)} loan ids are not loans of this run: {shown}")
        rows = tuple(RowRef(source_file=row.source_file, row=row.row) for row in found)
    cells: tuple[CellCorrection, ...] = ()
    if body.apply_corrections:
        # Corrections of the parent's loans and of the same rows in its ancestors (every run of
        # the chain reads the same archived files), oldest first so the latest wins at ingest.
        recorded = await corrections.for_rows(session, await repo.ancestry(session, parent.run_id))
        cells = tuple(
            CellCorrection(
                source_file=row.source_file,
                row=row.row,
                field=row.field,
                value=row.value,
                correction_id=row.correction_id,
            )
            for row in recorded
        )
    return ReprocessEdits(corrections=cells, rows=rows)


async def is_partial(session: AsyncSession, run_id: UUID) -> bool:
    """Whether a reprocess kept only some rows, as its request said (its edits' `rows`)."""
    edits = await reconciliation.edits_of(session, run_id)
    if edits is None:
        return False
    return ReprocessEdits.model_validate_json(edits_json(edits)).rows is not None


async def run_diff(session: AsyncSession, child: RunState, skip: int, limit: int) -> DiffResponse:
    """A reprocess's outcome diff against its parent: counts, and one page of the changes."""
    if child.parent_run_id is None:
        raise Conflict("This run is not a reprocess: it has no parent to compare with")
    if child.status not in DONE:
        raise Conflict(f"The reprocess has not completed (its status is {child.status})")
    after = [outcome_of(row) for row in await repo.outcomes(session, child.run_id)]
    before = [outcome_of(row) for row in await repo.outcomes(session, child.parent_run_id)]
    result = diff(after, before, partial=await is_partial(session, child.run_id))
    return DiffResponse(
        run_id=child.run_id,
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
            for change in page(result.changes, skip, limit)
        ],
        skip=skip,
        limit=limit,
    )
