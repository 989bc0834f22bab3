"""Queries on runs and what hangs off them; team scoping is part of every query."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.dq.repository import sums_of_row
from services.gateway.runs.progress import StageCount
from services.gateway.runs.quality import QualitySums
from services.gateway.tables import (
    report_files,
    run_exception_totals,
    run_stage_totals,
    run_totals,
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
    c = run_stage_totals.c
    query = select(c.stage, c.loans, c.first_recorded_at, c.last_recorded_at).where(
        c.run_id == run_id
    )
    return {
        stage: StageCount(int(total), first, last)
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


DISPOSITION_COUNTS = ("loans", "to_purchase", "projected", "rejected", "exceptions")


async def dispositioned_sums(
    session: AsyncSession, run_id: UUID
) -> tuple[dict[str, int], QualitySums]:
    """Loans by disposition and exceptions so far, and the run's quality sums."""
    row = (await session.execute(select(run_totals).where(run_totals.c.run_id == run_id))).first()
    if row is None:
        return dict.fromkeys(DISPOSITION_COUNTS, 0), QualitySums()
    return {name: getattr(row, name) for name in DISPOSITION_COUNTS}, sums_of_row(row)


async def exception_counts(session: AsyncSession, run_id: UUID) -> list[tuple[str, str, int]]:
    """(exception_type, severity, count) of a run's exceptions so far."""
    c = run_exception_totals.c
    query = (
        select(c.exception_type, c.severity, c.count)
        .where(c.run_id == run_id)
        .order_by(c.exception_type, c.severity)
    )
    return [(kind, severity, int(count)) for kind, severity, count in await session.execute(query)]
