"""Queries behind reconciliation (the caller has checked scope)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.loans import LOAN_FIELDS
from contracts.run_fold import DONE
from services.gateway.reconciliation.tables import (
    reconciliation_findings,
    reconciliation_reviews,
    reconciliations,
    run_edits,
)
from services.gateway.tables import loan_facts, report_files, runs

FETCH = 5_000
PROJECTED_COLUMNS = (
    "seq",
    "loan_id",
    "source_file",
    "row",
    *LOAN_FIELDS,
    "disposition",
    "pricing_spread",
    "final_price",
    "exceptions_count",
)


async def edits_of(session: AsyncSession, run_id: UUID) -> Any | None:
    """The reprocess edits of a run (None for a run that had none)."""
    return await session.scalar(select(run_edits.c.edits).where(run_edits.c.run_id == run_id))


async def projected(session: AsyncSession, run_id: UUID) -> AsyncIterator[Any]:
    """The run's projected loans in tape order, streamed a few thousand rows at a time."""
    c = loan_facts.c
    columns = [c[name] for name in PROJECTED_COLUMNS]
    query = (
        select(*columns)
        .where(c.run_id == run_id)
        .order_by(c.seq)
        .execution_options(yield_per=FETCH)
    )
    result = await session.stream(query)
    async for rows in result.partitions(FETCH):
        for row in rows:
            yield row


async def report_keys(session: AsyncSession, run_id: UUID) -> dict[str, str]:
    """Report key to storage key of the run's reports."""
    query = select(report_files.c.key, report_files.c.storage_key).where(
        report_files.c.run_id == run_id
    )
    return {row.key: row.storage_key for row in await session.execute(query)}


async def store(
    session: AsyncSession, run_id: UUID, summary: dict[str, Any], findings: Sequence[dict]
) -> None:
    """Replace the run's reconciliation with a new one (the caller commits)."""
    await session.execute(
        delete(reconciliation_findings).where(reconciliation_findings.c.run_id == run_id)
    )
    for start in range(0, len(findings), FETCH):
        await session.execute(
            insert(reconciliation_findings), list(findings[start : start + FETCH])
        )
    statement = pg_insert(reconciliations).values(run_id=run_id, **summary)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["run_id"], set_=dict(summary))
    )


async def get_summary(session: AsyncSession, run_id: UUID) -> Any | None:
    """The run's latest reconciliation."""
    query = select(reconciliations).where(reconciliations.c.run_id == run_id)
    return (await session.execute(query)).first()


async def list_findings(
    session: AsyncSession,
    run_id: UUID,
    kind: str | None,
    *,
    skip: int,
    limit: int,
    after: int | None,
) -> list[Any]:
    """Findings with their review, in the order found (keyset on ordinal)."""
    f, r = reconciliation_findings.c, reconciliation_reviews.c
    query = (
        select(reconciliation_findings, r.action, r.notes, r.reviewed_by, r.reviewed_at)
        .outerjoin(reconciliation_reviews, r.finding_id == f.finding_id)
        .where(f.run_id == run_id)
    )
    if kind is not None:
        query = query.where(f.kind == kind)
    if after is not None:
        query = query.where(f.ordinal > after)
    return list(await session.execute(query.order_by(f.ordinal).offset(skip).limit(limit)))


async def get_finding(session: AsyncSession, run_id: UUID, finding_id: UUID) -> Any | None:
    """One finding of a run."""
    f = reconciliation_findings.c
    query = select(reconciliation_findings).where(f.run_id == run_id, f.finding_id == finding_id)
    return (await session.execute(query)).first()


async def open_findings_by_kind(session: AsyncSession) -> dict[str, int]:
    """Findings no one accepted, over every completed run's latest reconciliation, by kind."""
    f, r = reconciliation_findings.c, reconciliation_reviews.c
    query = (
        select(f.kind, func.count())
        .select_from(
            reconciliation_findings.join(runs, runs.c.run_id == f.run_id).outerjoin(
                reconciliation_reviews, r.finding_id == f.finding_id
            )
        )
        .where(runs.c.status.in_(DONE), func.coalesce(r.action, "") != "accept")
        .group_by(f.kind)
    )
    return {kind: int(count) for kind, count in await session.execute(query)}


async def pending_runs(session: AsyncSession, limit: int) -> list[UUID]:
    """Completed (or already decided) runs never reconciled, or reconciled before they
    (re)completed, oldest first.

    A run counts only once every loan of it is projected: the projector reads `runs.v1` and the
    loan topics independently, so a run's completion can be stored before its last batches.
    """
    query = text(
        "SELECT r.run_id FROM gateway.runs r LEFT JOIN gateway.reconciliations c "
        "ON c.run_id = r.run_id WHERE r.status IN ('completed', 'decided') "
        "AND r.completed_at IS NOT NULL "
        "AND (c.run_id IS NULL OR c.reconciled_at < r.completed_at) "
        "AND r.total_loans = COALESCE((SELECT t.loans FROM gateway.run_totals t "
        "WHERE t.run_id = r.run_id), 0) "
        "ORDER BY r.completed_at LIMIT :limit"
    )
    return [row.run_id for row in await session.execute(query, {"limit": limit})]
