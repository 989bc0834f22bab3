"""Queries on runs and what hangs off them; team scoping is part of every query."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.runs.progress import StageCount
from services.gateway.runs.quality import QualitySums
from services.gateway.tables import (
    batch_exception_counts,
    batch_stats,
    report_files,
    run_batches,
    runs,
)


def _scoped(query: Select[Any], team_scope: str | None) -> Select[Any]:
    return query if team_scope is None else query.where(runs.c.sales_team_id == team_scope)


async def get_run(session: AsyncSession, run_id: UUID, team_scope: str | None) -> Any | None:
    """The run, if it exists and the caller's scope includes it."""
    query = _scoped(select(runs).where(runs.c.run_id == run_id), team_scope)
    return (await session.execute(query)).first()


async def list_runs(
    session: AsyncSession,
    *,
    team_scope: str | None,
    status: str | None,
    run_weekday: int | None,
    skip: int,
    limit: int,
    after: tuple[datetime, UUID] | None,
) -> list[Any]:
    """Runs newest first (keyset on created_at, run_id), filtered."""
    query = _scoped(select(runs), team_scope)
    if status is not None:
        query = query.where(runs.c.status == status)
    if run_weekday is not None:
        query = query.where(runs.c.run_weekday == run_weekday)
    if after is not None:
        query = query.where(tuple_(runs.c.created_at, runs.c.run_id) < tuple_(*after))
    query = query.order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
    return list(await session.execute(query.offset(skip).limit(limit)))


async def stage_counts(session: AsyncSession, run_id: UUID) -> dict[str, StageCount]:
    """Loans seen per loan topic for a run, with the first and last batch times."""
    query = (
        select(
            run_batches.c.stage,
            func.sum(run_batches.c.loan_count),
            func.min(run_batches.c.recorded_at),
            func.max(run_batches.c.recorded_at),
        )
        .where(run_batches.c.run_id == run_id)
        .group_by(run_batches.c.stage)
    )
    return {
        stage: StageCount(int(total or 0), first, last)
        for stage, total, first, last in await session.execute(query)
    }


async def report_rows(session: AsyncSession, run_id: UUID) -> list[Any]:
    """The run's report files, by key."""
    query = select(report_files).where(report_files.c.run_id == run_id).order_by(report_files.c.key)
    return list(await session.execute(query))


async def report_row(session: AsyncSession, run_id: UUID, key: str) -> Any | None:
    """One report file of a run."""
    query = select(report_files).where(report_files.c.run_id == run_id, report_files.c.key == key)
    return (await session.execute(query)).first()


async def dispositioned_sums(
    session: AsyncSession, run_id: UUID
) -> tuple[dict[str, int], QualitySums]:
    """Loans by disposition and exceptions so far, and the run's quality sums."""
    c = batch_stats.c
    query = select(
        func.coalesce(func.sum(c.loans), 0),
        func.coalesce(func.sum(c.to_purchase), 0),
        func.coalesce(func.sum(c.projected), 0),
        func.coalesce(func.sum(c.rejected), 0),
        func.coalesce(func.sum(c.exceptions), 0),
        func.coalesce(func.sum(c.present_fields), 0),
        func.coalesce(func.sum(c.validity_420), 0),
        func.coalesce(func.sum(c.unique_loans), 0),
        func.coalesce(func.sum(c.rules_passed), 0),
        func.coalesce(func.sum(c.dq_score), 0),
    ).where(c.run_id == run_id)
    row = (await session.execute(query)).one()
    counts = {
        "loans": int(row[0]),
        "to_purchase": int(row[1]),
        "projected": int(row[2]),
        "rejected": int(row[3]),
        "exceptions": int(row[4]),
    }
    sums = QualitySums(int(row[0]), int(row[5]), int(row[6]), int(row[7]), int(row[8]), row[9])
    return counts, sums


async def exception_counts(session: AsyncSession, run_id: UUID) -> list[tuple[str, str, int]]:
    """(exception_type, severity, count) of a run's exceptions so far."""
    c = batch_exception_counts.c
    query = (
        select(c.exception_type, c.severity, func.sum(c.count))
        .where(c.run_id == run_id)
        .group_by(c.exception_type, c.severity)
        .order_by(c.exception_type, c.severity)
    )
    return [(kind, severity, int(count)) for kind, severity, count in await session.execute(query)]
