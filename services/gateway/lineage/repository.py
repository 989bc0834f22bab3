"""Queries behind lineage and stage tracking (the caller has checked scope)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.lineage.tables import batch_positions
from services.gateway.tables import (
    exception_actions,
    loan_exceptions,
    loan_facts,
    loan_scores,
    model_cards,
    review_actions,
    review_cases,
    review_decisions,
    run_batches,
    run_totals,
)

FINAL_DECISION = "final"


async def loans_per_batch(session: AsyncSession, run_id: UUID) -> dict[str, dict[int, int]]:
    """Loans per batch number, per loan-topic stage."""
    c = run_batches.c
    query = select(c.stage, c.batch_seq, c.loan_count).where(c.run_id == run_id)
    found: dict[str, dict[int, int]] = {}
    for stage, batch_seq, count in await session.execute(query):
        found.setdefault(stage, {})[batch_seq] = count
    return found


async def projected_loans(session: AsyncSession, run_id: UUID) -> int:
    """Loans of the run in the loan read model."""
    query = select(run_totals.c.loans).where(run_totals.c.run_id == run_id)
    return int(await session.scalar(query) or 0)


async def positions(
    session: AsyncSession, run_id: UUID, batch_seqs: list[int], stage: str | None = None
) -> list[Any]:
    """(stage, batch_seq, partition, offset) of those batches on every loan topic (or one)."""
    c = batch_positions.c
    query = select(c.stage, c.batch_seq, c.partition, c.offset).where(
        c.run_id == run_id, c.batch_seq.in_(batch_seqs)
    )
    if stage is not None:
        query = query.where(c.stage == stage)
    return list(await session.execute(query))


async def batch_times(session: AsyncSession, run_id: UUID, batch_seq: int) -> dict[str, Any]:
    """When each stage's copy of a batch was recorded (its Kafka timestamp)."""
    c = run_batches.c
    query = select(c.stage, c.recorded_at).where(c.run_id == run_id, c.batch_seq == batch_seq)
    return {row.stage: row.recorded_at for row in await session.execute(query)}


async def exception_types(session: AsyncSession, run_id: UUID, seq: int) -> list[str]:
    """A loan's exception types in the order they were raised."""
    c = loan_exceptions.c
    query = select(c.exception_type).where(c.run_id == run_id, c.seq == seq).order_by(c.ordinal)
    return list((await session.scalars(query)).all())


async def triage_actions(session: AsyncSession, exception_ids: list[UUID]) -> list[Any]:
    """Every triage.v1 event on those exceptions, in log order."""
    a = exception_actions.c
    query = (
        select(exception_actions)
        .where(a.exception_id.in_(exception_ids))
        .order_by(a.offset, a.occurred_at, a.event_id)
    )
    return list(await session.execute(query))


async def score_of(session: AsyncSession, run_id: UUID, seq: int) -> Any | None:
    """The loan's model score, or None before it is scored."""
    s = loan_scores.c
    query = select(loan_scores).where(s.run_id == run_id, s.seq == seq)
    return (await session.execute(query)).first()


async def review_history(session: AsyncSession, loan_id: UUID) -> list[Any]:
    """Every reviews.v1 event on the loan's review case, in log order, with the case id."""
    a = review_actions.c
    query = (
        select(review_actions)
        .join(review_cases, review_cases.c.case_id == a.case_id)
        .where(review_cases.c.loan_id == loan_id)
        .order_by(a.offset, a.occurred_at, a.event_id)
    )
    return list(await session.execute(query))


async def caseless_decisions(session: AsyncSession, loan_id: UUID) -> list[Any]:
    """The loan's decisions taken without a case (the automatic ones), oldest first."""
    d = review_decisions.c
    query = (
        select(review_decisions)
        .where(d.loan_id == loan_id, d.case_id.is_(None))
        .order_by(d.decided_at, d.decision_id)
    )
    return list(await session.execute(query))


async def scoring_deployed(session: AsyncSession) -> bool:
    """Whether a scoring service has ever announced a model (models.v1)."""
    return await session.scalar(select(func.count()).select_from(model_cards)) != 0


async def scored_loans(session: AsyncSession, run_id: UUID) -> int:
    """Loans of the run in the score read model."""
    query = select(func.count()).select_from(loan_scores).where(loan_scores.c.run_id == run_id)
    return int(await session.scalar(query) or 0)


async def decided_loans(session: AsyncSession, run_id: UUID) -> int:
    """Loans of the run with a final decision (automatic or a person's)."""
    d = review_decisions.c
    query = select(func.count(func.distinct(d.loan_id))).where(
        d.run_id == run_id, d.status == FINAL_DECISION
    )
    return int(await session.scalar(query) or 0)


async def unscored_loan_ids(session: AsyncSession, run_id: UUID, limit: int) -> list[UUID]:
    """Projected loans of the run without a score, in tape order."""
    f, s = loan_facts.c, loan_scores.c
    scored = select(s.seq).where(s.run_id == run_id, s.seq == f.seq)
    query = (
        select(f.loan_id).where(f.run_id == run_id, ~scored.exists()).order_by(f.seq).limit(limit)
    )
    return list((await session.scalars(query)).all())


async def undecided_loan_ids(session: AsyncSession, run_id: UUID, limit: int) -> list[UUID]:
    """Scored loans of the run without a final decision, in tape order."""
    s, d = loan_scores.c, review_decisions.c
    decided = select(d.decision_id).where(
        d.run_id == run_id, d.seq == s.seq, d.status == FINAL_DECISION
    )
    query = (
        select(s.loan_id).where(s.run_id == run_id, ~decided.exists()).order_by(s.seq).limit(limit)
    )
    return list((await session.scalars(query)).all())
