"""Queries of credit review: scored loans, cases with their run's team, history, fold outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Integer,
    Select,
    Uuid,
    any_,
    bindparam,
    column,
    func,
    literal_column,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.review.domain import ACTIVE
from services.gateway.tables import (
    auto_decided_batches,
    exception_triage,
    loan_exceptions,
    loan_facts,
    loan_scores,
    model_cards,
    projector_state,
    review_actions,
    review_cases,
    review_decisions,
    runs,
    scored_batches,
)

c = review_cases.c
s = loan_scores.c
a = review_actions.c
SIMILAR_CANDIDATES = 500
AUTO_DECIDED = ("auto_approve", "auto_decline")


async def projection_state(session: AsyncSession) -> Any:
    """The read models' `generation` (one more per rebuild) and whether the projector is
    `replaying` the log into them."""
    state = projector_state.c
    return (await session.execute(select(state.generation, state.replaying))).one()


async def review_batches(session: AsyncSession) -> list[Any]:
    """Every scored batch holding `human_review` loans, by run and batch: (run_id, batch_seq,
    first_seq, last_seq, version), thousands of rows per million loans.

    Routing is `human_review` or one of AUTO_DECIDED, so a batch holds human reviews iff not all
    of its loans were auto-routed. `version` is the row's `xmin`, the transaction that wrote it
    last: a batch delivered or scored again is written again, and so has another version.
    """
    b = scored_batches.c
    query = (
        select(
            b.run_id,
            b.batch_seq,
            b.first_seq,
            b.last_seq,
            literal_column("xmin::text").label("version"),
        )
        .where(b.loans > b.auto_routed)
        .order_by(b.run_id, b.batch_seq)
    )
    return list(await session.execute(query))


async def unopened_reviews(session: AsyncSession, batches: Sequence[Any]) -> list[Any]:
    """The `human_review` loans without a case of these scored batches (rows of
    `review_batches`), with their batch's run_id and batch_seq, batch by batch in the order
    given, each in tape order.

    Each batch is read by its range of tape positions through the (run_id, routing_decision,
    seq) index and anti-joined by the case index on loan_id: a lateral join, since a plain one
    is planned as a scan of every scored loan (a run's positions do not tell the planner how few
    rows a range holds).
    """
    given = func.unnest(
        _ids([batch.run_id for batch in batches]),
        _ints([batch.batch_seq for batch in batches]),
        _ints([batch.first_seq for batch in batches]),
        _ints([batch.last_seq for batch in batches]),
    ).table_valued(
        column("run_id", Uuid),
        column("batch_seq", Integer),
        column("first_seq", Integer),
        column("last_seq", Integer),
        with_ordinality="ordinal",
    )
    given = given.render_derived()
    loans = (
        # Only what a case is opened with: not the factors and model inputs (JSONB decoded
        # per row), of which the loan amount alone is read, as text, by the server.
        select(
            s.loan_id,
            s.seq,
            s.seller_loan_number,
            s.model_version,
            s.score,
            s.routing_reason,
            s.features["loan_amount"].astext.label("loan_amount"),
            s.scored_at,
        )
        .where(
            s.run_id == given.c.run_id,
            s.routing_decision == "human_review",
            s.seq.between(given.c.first_seq, given.c.last_seq),
            ~select(c.case_id).where(c.loan_id == s.loan_id).exists(),
        )
        .lateral()
    )
    query = (
        select(given.c.run_id, given.c.batch_seq, loans)
        .select_from(given)
        .join(loans, true())
        .order_by(given.c.ordinal, loans.c.seq)
    )
    # The planner expects a range to hold far more rows than a batch does, and would spend
    # longer compiling the query (JIT) than running it.
    await session.execute(text("SET LOCAL jit = off"))
    return list(await session.execute(query))


def _cases(team_scope: str | None) -> Select[Any]:
    query = select(review_cases, runs.c.sales_team_id).outerjoin(runs, runs.c.run_id == c.run_id)
    if team_scope is not None:
        query = query.where(runs.c.sales_team_id == team_scope)
    return query


async def find_cases(
    session: AsyncSession,
    team_scope: str | None,
    statuses: Sequence[str] | None,
    assignee: UUID | None,
) -> list[Any]:
    """Cases in scope with the given statuses (all when None) and assignee."""
    query = _cases(team_scope)
    if statuses is not None:
        query = query.where(c.status.in_(list(statuses)))
    if assignee is not None:
        query = query.where(c.assignee == assignee)
    return list(await session.execute(query.order_by(c.opened_at, c.case_id)))


async def get_case(session: AsyncSession, case_id: UUID, team_scope: str | None) -> Any | None:
    """One case with its run's team, or None (also when another team's)."""
    return (await session.execute(_cases(team_scope).where(c.case_id == case_id))).first()


async def active_cases(session: AsyncSession, user_id: UUID) -> int:
    """How many assigned or in-progress cases a user holds."""
    query = select(func.count()).where(c.assignee == user_id, c.status.in_(sorted(ACTIVE)))
    return int((await session.execute(query)).scalar_one())


async def score_of(session: AsyncSession, run_id: UUID, seq: int) -> Any | None:
    """A loan's score row."""
    query = select(loan_scores).where(s.run_id == run_id, s.seq == seq)
    return (await session.execute(query)).first()


async def loan_of(session: AsyncSession, run_id: UUID, seq: int) -> Any | None:
    """A loan's facts row."""
    query = select(loan_facts).where(loan_facts.c.run_id == run_id, loan_facts.c.seq == seq)
    return (await session.execute(query)).first()


async def exceptions_of(session: AsyncSession, run_id: UUID, seq: int) -> list[Any]:
    """A loan's exceptions with their triage status."""
    e = loan_exceptions.c
    query = (
        select(
            e.exception_id,
            e.exception_type,
            e.category,
            e.severity,
            e.message,
            func.coalesce(exception_triage.c.status, "new").label("status"),
        )
        .outerjoin(exception_triage, exception_triage.c.exception_id == e.exception_id)
        .where(e.run_id == run_id, e.seq == seq)
        .order_by(e.ordinal)
    )
    return list(await session.execute(query))


async def similar_candidates(
    session: AsyncSession, loan_id: UUID, score: int, team_scope: str | None
) -> list[Any]:
    """Loans with a final decision (the machine's or a person's) nearest in score: the pool the
    feature distance ranks."""
    decisions = review_decisions.c
    query = (
        select(
            s.run_id,
            s.seq,
            s.loan_id,
            s.seller_loan_number,
            s.score,
            decisions.decision_type,
            s.features,
        )
        .join(
            review_decisions,
            (decisions.loan_id == s.loan_id) & (decisions.status == "final"),
        )
        .where(s.loan_id != loan_id)
        .order_by(func.abs(s.score - score), s.run_id, s.seq)
        .limit(SIMILAR_CANDIDATES)
    )
    if team_scope is not None:
        query = query.join(runs, runs.c.run_id == s.run_id).where(
            runs.c.sales_team_id == team_scope
        )
    return list(await session.execute(query))


async def history(session: AsyncSession, case_id: UUID) -> list[Any]:
    """A case's events in log order."""
    query = select(review_actions).where(a.case_id == case_id).order_by(a.offset, a.occurred_at)
    return list(await session.execute(query))


async def outcomes(session: AsyncSession, event_ids: Sequence[UUID]) -> dict[UUID, Any]:
    """The fold's outcome of each event already projected."""
    query = select(a.event_id, a.applied, a.reason).where(a.event_id == any_(_ids(event_ids)))
    return {row.event_id: row for row in await session.execute(query)}


async def latest_model(session: AsyncSession) -> Any | None:
    """The most recently loaded model card."""
    query = select(model_cards).order_by(model_cards.c.loaded_at.desc()).limit(1)
    return (await session.execute(query)).first()


def _ids(ids: Sequence[UUID]) -> Any:
    return bindparam(None, list(ids), type_=ARRAY(Uuid()))


def _ints(values: Sequence[int]) -> Any:
    return bindparam(None, list(values), type_=ARRAY(Integer()))


d = review_decisions.c


async def undecided_auto_batches(
    session: AsyncSession, limit: int, after: tuple[Any, Any] | None = None
) -> list[Any]:
    """Every auto-routed loan of up to `limit` scored batches whose auto decisions are not
    recorded yet (found by batch, then read by the batch's range of tape positions); batches
    after `after` = (run_id, batch_seq) when given."""
    b, done = scored_batches.c, auto_decided_batches.c
    pending: Any = (
        select(b.run_id, b.batch_seq, b.first_seq, b.last_seq)
        .outerjoin(
            auto_decided_batches,
            (done.run_id == b.run_id) & (done.batch_seq == b.batch_seq),
        )
        .where(b.auto_routed > 0, done.run_id.is_(None))
        .order_by(b.run_id, b.batch_seq)
        .limit(limit)
    )
    if after is not None:
        pending = pending.where(tuple_(b.run_id, b.batch_seq) > tuple_(*after))
    pending = pending.subquery()
    query = (
        select(s.run_id, s.batch_seq, s.loan_id, s.seq, s.routing_decision, s.score)
        .join(
            pending,
            (pending.c.run_id == s.run_id)
            & (s.seq >= pending.c.first_seq)
            & (s.seq <= pending.c.last_seq),
        )
        .where(s.routing_decision.in_(AUTO_DECIDED))
        .order_by(s.run_id, s.batch_seq, s.seq)
    )
    return list(await session.execute(query))


async def get_decision(
    session: AsyncSession, decision_id: UUID, team_scope: str | None
) -> Any | None:
    """One decision with its run's team, or None (also when another team's)."""
    query = (
        select(review_decisions, runs.c.sales_team_id)
        .outerjoin(runs, runs.c.run_id == d.run_id)
        .where(d.decision_id == decision_id)
    )
    if team_scope is not None:
        query = query.where(runs.c.sales_team_id == team_scope)
    return (await session.execute(query)).first()


async def decisions_with_status(
    session: AsyncSession, status: str, team_scope: str | None, limit: int
) -> list[Any]:
    """Decisions in a status, oldest first."""
    query = (
        select(review_decisions, runs.c.sales_team_id)
        .outerjoin(runs, runs.c.run_id == d.run_id)
        .where(d.status == status)
        .order_by(d.decided_at, d.decision_id)
        .limit(limit)
    )
    if team_scope is not None:
        query = query.where(runs.c.sales_team_id == team_scope)
    return list(await session.execute(query))


async def decisions_of_case(session: AsyncSession, case_id: UUID) -> list[Any]:
    """Every decision taken on a case, oldest first."""
    query = select(review_decisions).where(d.case_id == case_id).order_by(d.decided_at)
    return list(await session.execute(query))
