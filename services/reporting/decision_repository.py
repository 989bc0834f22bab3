"""Reporting's view of reviews.v1 (schema `reporting`): cases, decisions, decided runs; the caller
commits. See migration 0003 for the tables."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.review_fold import CaseState
from contracts.reviews import AutoDecisionsRecorded, ReviewDecisionRecorded, ReviewEvent
from services.reporting.decision_tape import BOUGHT, FinalDecision
from services.reporting.repository import loans, metadata

# One schema, one metadata: the migrations are checked against all of reporting's tables.

review_cases = Table(
    "review_cases",
    metadata,
    Column("case_id", Uuid, primary_key=True),
    Column("run_id", Uuid, nullable=False),
    Column("loan_id", Uuid, nullable=False),
    Column("state", JSONB, nullable=False),
)
review_events = Table("review_events", metadata, Column("event_id", Uuid, primary_key=True))
decisions = Table(
    "decisions",
    metadata,
    Column("loan_id", Uuid, primary_key=True),
    Column("run_id", Uuid, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("decision_id", Uuid, nullable=False),
    Column("decision_type", Text, nullable=False),
    Column("final", Boolean, nullable=False),
    Column("score", Integer, nullable=False),
    Column("terms", Text),
    Column("conditions", JSONB, nullable=False),
    Column("decided_by", Uuid),
    Column("approved_by", Uuid),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("final_at", DateTime(timezone=True)),
    Index("decisions_run_seq", "run_id", "seq"),
    Index("decisions_run_final", "run_id", postgresql_where=text("final")),
)
decided_runs = Table(
    "decided_runs",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("total_loans", Integer),
    Column("decided_at", DateTime(timezone=True)),
)

_UUIDS = ("assignee", "decision_id", "decided_by")
_TIMES = (
    "assigned_at",
    "started_at",
    "updated_at",
    "decided_at",
    "sla_warned_at",
    "sla_breached_at",
    "escalated_at",
)


def state_json(state: CaseState) -> dict[str, Any]:
    """A case state as JSON values."""
    values = asdict(state)
    for name in (*_UUIDS, *_TIMES):
        if values[name] is not None:
            values[name] = str(values[name]) if name in _UUIDS else values[name].isoformat()
    values["fulfilled"] = list(state.fulfilled)
    return values


def state_of(values: dict[str, Any]) -> CaseState:
    """A case state from its JSON values."""
    found = dict(values)
    for name in _UUIDS:
        found[name] = None if found[name] is None else UUID(found[name])
    for name in _TIMES:
        # .get: a state stored before a field existed lacks it
        found[name] = None if found.get(name) is None else datetime.fromisoformat(found[name])
    found["fulfilled"] = tuple(found["fulfilled"])
    return CaseState(**found)


@dataclass(frozen=True, slots=True)
class Readiness:
    """What deciding a run needs to know."""

    total_loans: int | None
    decided_at: datetime | None
    final: int

    @property
    def ready(self) -> bool:
        """The run completed, is not decided yet, and every one of its loans has a final one."""
        return (
            self.decided_at is None
            and self.total_loans is not None
            and self.final >= self.total_loans
        )


class DecisionRepository:
    """SQL over reporting's review tables on one connection; never commits."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def claim_event(self, event_id: UUID) -> bool:
        """Record a review event as applied; False when it already was (a redelivery)."""
        statement = insert(review_events).values(event_id=event_id).on_conflict_do_nothing()
        return (
            await self.connection.execute(statement.returning(review_events.c.event_id))
        ).first() is not None

    async def case_state(self, case_id: UUID) -> CaseState | None:
        """The case's state, locked until the transaction ends; None before it was opened."""
        query = select(review_cases.c.state).where(review_cases.c.case_id == case_id)
        row = (await self.connection.execute(query.with_for_update())).first()
        return None if row is None else state_of(row[0])

    async def save_case(self, event: ReviewEvent, state: CaseState) -> None:
        """Store the case's state after `event`."""
        statement = insert(review_cases).values(
            case_id=event.case_id,
            run_id=event.run_id,
            loan_id=event.loan_id,
            state=state_json(state),
        )
        await self.connection.execute(
            statement.on_conflict_do_update(
                index_elements=[review_cases.c.case_id], set_={"state": statement.excluded.state}
            )
        )

    async def add_auto(self, event: AutoDecisionsRecorded, decision_ids: Sequence[UUID]) -> None:
        """The machine's decisions of one scored batch: final as they are (kept once)."""
        if not event.decisions:
            return
        rows = [
            {
                "loan_id": auto.loan_id,
                "run_id": event.run_id,
                "seq": auto.seq,
                "decision_id": decision_id,
                "decision_type": auto.decision_type,
                "final": True,
                "score": auto.score,
                "terms": None,
                "conditions": [],
                "decided_by": None,
                "approved_by": None,
                "decided_at": event.occurred_at,
                "final_at": event.occurred_at,
            }
            for auto, decision_id in zip(event.decisions, decision_ids, strict=True)
        ]
        await self.connection.execute(insert(decisions).values(rows).on_conflict_do_nothing())

    async def record_decision(self, event: ReviewDecisionRecorded) -> None:
        """A person's decision: final unless it is an override awaiting a second person."""
        final = not event.is_override
        values = {
            "run_id": event.run_id,
            "seq": event.seq,
            "decision_id": event.decision_id,
            "decision_type": event.decision_type,
            "final": final,
            "score": event.score,
            "terms": event.terms,
            "conditions": [[c.condition_type, c.description] for c in event.conditions],
            "decided_by": event.actor_id,
            "approved_by": None,
            "decided_at": event.occurred_at,
            "final_at": event.occurred_at if final else None,
        }
        statement = insert(decisions).values(loan_id=event.loan_id, **values)
        await self.connection.execute(
            statement.on_conflict_do_update(index_elements=[decisions.c.loan_id], set_=values)
        )

    async def approve_override(self, decision_id: UUID, by: UUID | None, at: datetime) -> None:
        """A second person approved the override: the decision is final."""
        await self.connection.execute(
            update(decisions)
            .where(decisions.c.decision_id == decision_id)
            .values(final=True, approved_by=by, final_at=at)
        )

    async def reject_override(self, decision_id: UUID) -> None:
        """The override was rejected: the loan has no decision until the analyst decides again."""
        await self.connection.execute(
            delete(decisions).where(decisions.c.decision_id == decision_id)
        )

    async def record_completed(self, run_id: UUID, total_loans: int) -> None:
        """The run completed with `total_loans` loans, each of which needs a final decision."""
        statement = insert(decided_runs).values(run_id=run_id, total_loans=total_loans)
        await self.connection.execute(
            statement.on_conflict_do_update(
                index_elements=[decided_runs.c.run_id], set_={"total_loans": total_loans}
            )
        )

    async def readiness(self, run_id: UUID) -> Readiness:
        """The run's loan count, decision time and final decisions so far."""
        row = (
            await self.connection.execute(
                select(decided_runs.c.total_loans, decided_runs.c.decided_at).where(
                    decided_runs.c.run_id == run_id
                )
            )
        ).first()
        if row is None or row.total_loans is None or row.decided_at is not None:
            return Readiness(None if row is None else row.total_loans, row and row.decided_at, 0)
        final = await self.connection.scalar(
            select(func.count()).where(decisions.c.run_id == run_id, decisions.c.final)
        )
        return Readiness(row.total_loans, None, int(final or 0))

    async def decision_counts(self, run_id: UUID) -> tuple[dict[str, int], datetime | None]:
        """Final decisions by type, and when the last of them became final."""
        query = (
            select(decisions.c.decision_type, func.count(), func.max(decisions.c.final_at))
            .where(decisions.c.run_id == run_id, decisions.c.final)
            .group_by(decisions.c.decision_type)
        )
        rows = (await self.connection.execute(query)).all()
        last = max((row[2] for row in rows if row[2] is not None), default=None)
        return {row[0]: int(row[1]) for row in rows}, last

    async def stream_bought(
        self, run_id: UUID, chunk: int
    ) -> AsyncIterator[Sequence[tuple[str, FinalDecision]]]:
        """The run's bought loans in tape order: their report row and final decision."""
        d = decisions.c
        query = (
            select(
                loans.c.report_rows,
                d.decision_type,
                d.score,
                d.terms,
                d.conditions,
                d.decided_by,
                d.approved_by,
                d.final_at,
            )
            .select_from(decisions.join(loans, loans.c.loan_id == d.loan_id))
            .where(d.run_id == run_id, d.final, d.decision_type.in_(sorted(BOUGHT)))
            .order_by(d.seq)
            .execution_options(yield_per=chunk)
        )
        result = await self.connection.stream(query)
        async for partition in result.partitions(chunk):
            yield [
                (
                    row[0],
                    FinalDecision(
                        decision_type=row[1],
                        score=row[2],
                        terms=row[3],
                        conditions=[(kind, description) for kind, description in row[4]],
                        decided_by=row[5],
                        approved_by=row[6],
                        decided_at=row[7],
                    ),
                )
                for row in partition
            ]

    async def mark_decided(self, run_id: UUID, decided_at: datetime) -> bool:
        """The run is decided; False when it already was."""
        statement = (
            update(decided_runs)
            .where(decided_runs.c.run_id == run_id, decided_runs.c.decided_at.is_(None))
            .values(decided_at=decided_at)
            .returning(decided_runs.c.run_id)
        )
        return (await self.connection.execute(statement)).first() is not None
