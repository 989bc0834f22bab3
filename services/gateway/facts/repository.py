"""Queries on loan facts and exceptions: keyset-paged, team-scoped inside the SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.tables import exception_triage, loan_exceptions, loan_facts

ExceptionKey = tuple[int | None, UUID, int, int]


@dataclass(frozen=True, slots=True)
class ExceptionFilters:
    """What `GET /exceptions` and its export filter on."""

    run_id: UUID | None = None
    exception_type: str | None = None
    severity: str | None = None
    rejection_criteria: str | None = None
    status: str | None = None
    assignee: UUID | None = None
    loan_id: UUID | None = None
    min_age: timedelta | None = None
    max_age: timedelta | None = None
    now: datetime | None = None
    """The clock the SLA-age filters measure against (`min_age`, `max_age`)."""


async def list_loans(
    session: AsyncSession,
    *,
    run_id: UUID,
    disposition: str | None,
    skip: int,
    limit: int,
    after_seq: int | None,
) -> list[Any]:
    """A run's loans in tape order (the caller has checked the run is in scope)."""
    query = select(loan_facts).where(loan_facts.c.run_id == run_id)
    if disposition is not None:
        query = query.where(loan_facts.c.disposition == disposition)
    if after_seq is not None:
        query = query.where(loan_facts.c.seq > after_seq)
    query = query.order_by(loan_facts.c.seq).offset(skip).limit(limit)
    return list(await session.execute(query))


def exceptions_query(
    filters: ExceptionFilters, team_scope: str | None, after: ExceptionKey | None
) -> Select[Any]:
    """Exceptions newest run first, each run in tape order; one run alone in tape order."""
    c = loan_exceptions.c
    query = with_triage(select(loan_exceptions))
    query = _triage_filters(query, filters)
    if team_scope is not None:
        query = query.where(c.sales_team_id == team_scope)
    if filters.exception_type is not None:
        query = query.where(c.exception_type == filters.exception_type)
    if filters.severity is not None:
        query = query.where(c.severity == filters.severity)
    if filters.rejection_criteria is not None:
        query = query.where(c.rejection_criteria == filters.rejection_criteria)
    if filters.run_id is not None:
        # Within one run the order is the tape's: the (run_id, seq, ordinal) indexes serve it.
        query = query.where(c.run_id == filters.run_id)
        if after is not None:
            query = query.where(tuple_(c.seq, c.ordinal) > tuple_(after[2], after[3]))
        return query.order_by(c.seq, c.ordinal)
    if after is not None:
        query = query.where(tuple_(c.run_order, c.run_id, c.seq, c.ordinal) > tuple_(*after))
    return query.order_by(c.run_order, c.run_id, c.seq, c.ordinal)


t = exception_triage.c
STATUS = func.coalesce(t.status, literal("new"))


def with_triage(query: Select[Any]) -> Select[Any]:
    """Add each exception's lifecycle columns (status `new` until its first action)."""
    return query.add_columns(
        STATUS.label("status"),
        t.assignee,
        t.waiver_requested_by,
        t.updated_at.label("status_updated_at"),
        t.closed_at,
    ).outerjoin(exception_triage, t.exception_id == loan_exceptions.c.exception_id)


def _triage_filters(query: Select[Any], filters: ExceptionFilters) -> Select[Any]:
    c = loan_exceptions.c
    if filters.status is not None:
        query = query.where(filters.status == STATUS)
    if filters.assignee is not None:
        query = query.where(t.assignee == filters.assignee)
    if filters.loan_id is not None:
        query = query.where(c.loan_id == filters.loan_id)
    if filters.min_age is not None or filters.max_age is not None:
        # SLA age: from the exception's creation (its run's) to its closing, or to now if open.
        age = func.coalesce(t.closed_at, filters.now) - c.created_at
        if filters.min_age is not None:
            query = query.where(age >= filters.min_age)
        if filters.max_age is not None:
            query = query.where(age <= filters.max_age)
    return query


async def list_exceptions(
    session: AsyncSession,
    filters: ExceptionFilters,
    *,
    team_scope: str | None,
    skip: int,
    limit: int,
    after: ExceptionKey | None,
) -> list[Any]:
    """One page of exceptions."""
    query = exceptions_query(filters, team_scope, after).offset(skip).limit(limit)
    return list(await session.execute(query))


def exception_key(row: Any) -> ExceptionKey:
    """The keyset sort key of an exception row."""
    return (row.run_order, row.run_id, row.seq, row.ordinal)
