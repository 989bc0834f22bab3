"""Reporting's view of reviews.v1 (schema `reporting`): cases, decisions, decided runs; the caller
commits. See migration 0003 for the tables."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import groupby
from typing import Any, cast
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
    and_,
    bindparam,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.ids import event_id
from contracts.review_fold import CaseState
from contracts.reviews import (
    AutoDecisionsRecorded,
    ReviewDecisionRecorded,
    ReviewEvent,
    ReviewOverrideApproved,
    ReviewOverrideRejected,
)
from services.reporting.decision_tape import BOUGHT, FinalDecision
from services.reporting.domain import DecisionWrite
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
final_counts = Table(
    "final_counts",
    metadata,
    # Kept by triggers on `decisions` (migration 0005): each statement's change, in its transaction.
    Column("run_id", Uuid, primary_key=True),
    Column("final", Integer, nullable=False),
)
decided_runs = Table(
    "decided_runs",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("total_loans", Integer),
    Column("decided_at", DateTime(timezone=True)),
)

# Bind parameters per statement: PostgreSQL's protocol allows 32,767.
MAX_PARAMETERS = 30_000

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


def auto_decision_id(run_id: UUID, loan_id: UUID) -> UUID:
    """The id of a loan's auto decision (the gateway's read model names it the same)."""
    return event_id("review.auto_decided", run_id, loan_id)


# Set-based statements over arrays, one round trip and one cached plan whatever the batch size
# (a multi-row VALUES is compiled again for every size, which costs more than the database).
_CLAIM_EVENTS = text(
    """
    INSERT INTO reporting.review_events (event_id)
    SELECT event_id FROM unnest(CAST(:event_ids AS uuid[])) AS batch (event_id)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
).columns(review_events.c.event_id)
_SAVE_CASES = text(
    """
    INSERT INTO reporting.review_cases (case_id, run_id, loan_id, state)
    SELECT case_id, run_id, loan_id, CAST(state AS jsonb)
    FROM unnest(
        CAST(:case_ids AS uuid[]),
        CAST(:run_ids AS uuid[]),
        CAST(:loan_ids AS uuid[]),
        CAST(:states AS text[])
    ) AS batch (case_id, run_id, loan_id, state)
    ON CONFLICT (case_id) DO UPDATE SET state = excluded.state
    """
)
_ADD_AUTO = text(
    """
    INSERT INTO reporting.decisions (
        loan_id, run_id, seq, decision_id, decision_type, final, score, terms, conditions,
        decided_by, approved_by, decided_at, final_at
    )
    SELECT loan_id, run_id, seq, decision_id, decision_type, true, score, NULL,
        CAST('[]' AS jsonb), NULL, NULL, occurred_at, occurred_at
    FROM unnest(
        CAST(:loan_ids AS uuid[]),
        CAST(:run_ids AS uuid[]),
        CAST(:seqs AS integer[]),
        CAST(:decision_ids AS uuid[]),
        CAST(:decision_types AS text[]),
        CAST(:scores AS integer[]),
        CAST(:times AS timestamptz[])
    ) AS batch (loan_id, run_id, seq, decision_id, decision_type, score, occurred_at)
    ON CONFLICT (loan_id) DO NOTHING
    """
)


_LOCK_COUNTS = text(
    """
    INSERT INTO reporting.final_counts AS counted (run_id, final)
    SELECT run_id, 0 FROM unnest(CAST(:run_ids AS uuid[])) AS runs (run_id) ORDER BY run_id
    ON CONFLICT (run_id) DO UPDATE SET final = counted.final
    """
)


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

    async def claim_events(self, event_ids: Iterable[UUID]) -> set[UUID]:
        """Record review events as applied; the ids not seen before (the rest are redeliveries)."""
        ids = list(dict.fromkeys(event_ids))
        if not ids:
            return set()
        result = await self.connection.execute(_CLAIM_EVENTS, {"event_ids": ids})
        return set(result.scalars())

    async def case_states(self, case_ids: Iterable[UUID]) -> dict[UUID, CaseState]:
        """The stored states of these cases (those opened before), locked until the transaction
        ends (in case order, so two writers never wait on each other in a circle)."""
        wanted = sorted(set(case_ids))
        if not wanted:
            return {}
        query = (
            select(review_cases.c.case_id, review_cases.c.state)
            .where(review_cases.c.case_id.in_(wanted))
            .order_by(review_cases.c.case_id)
            .with_for_update()
        )
        rows = (await self.connection.execute(query)).all()
        return {row.case_id: state_of(row.state) for row in rows}

    async def save_cases(self, cases: Iterable[tuple[ReviewEvent, CaseState]]) -> None:
        """Store each case's state; a new case's row takes its run and loan from `event`."""
        rows = [(event, json.dumps(state_json(state))) for event, state in cases]
        if not rows:
            return
        await self.connection.execute(
            _SAVE_CASES,
            {
                "case_ids": [event.case_id for event, _ in rows],
                "run_ids": [event.run_id for event, _ in rows],
                "loan_ids": [event.loan_id for event, _ in rows],
                "states": [state for _, state in rows],
            },
        )

    async def apply_decisions(self, writes: Sequence[DecisionWrite]) -> None:
        """Apply what the batch's accepted events do to the decisions, in log order: each run of
        consecutive events of one kind in one statement (or one round trip).

        The runs' final counts (kept by triggers as the statements change decisions) are locked
        first, all in run order in one statement: transactions touching the same runs then wait
        for each other instead of deadlocking on them statement by statement.
        """
        run_ids = sorted({write.run_id for write in writes})
        if run_ids:
            await self.connection.execute(_LOCK_COUNTS, {"run_ids": run_ids})
        for kind, group in groupby(writes, key=type):
            events = list(group)
            if kind is AutoDecisionsRecorded:
                await self._add_auto(cast(list[AutoDecisionsRecorded], events))
            elif kind is ReviewDecisionRecorded:
                await self._record_decisions(cast(list[ReviewDecisionRecorded], events))
            elif kind is ReviewOverrideApproved:
                await self._approve_overrides(cast(list[ReviewOverrideApproved], events))
            else:
                await self._reject_overrides(cast(list[ReviewOverrideRejected], events))

    async def _add_auto(self, events: Sequence[AutoDecisionsRecorded]) -> None:
        """The machine's decisions of scored batches: final as they are (a loan's first kept)."""
        pairs = [(event, auto) for event in events for auto in event.decisions]
        if not pairs:
            return
        await self.connection.execute(
            _ADD_AUTO,
            {
                "loan_ids": [auto.loan_id for _, auto in pairs],
                "run_ids": [event.run_id for event, _ in pairs],
                "seqs": [auto.seq for _, auto in pairs],
                "decision_ids": [auto_decision_id(e.run_id, auto.loan_id) for e, auto in pairs],
                "decision_types": [auto.decision_type for _, auto in pairs],
                "scores": [auto.score for _, auto in pairs],
                "times": [event.occurred_at for event, _ in pairs],
            },
        )

    async def _record_decisions(self, events: Sequence[ReviewDecisionRecorded]) -> None:
        """People's decisions, each final unless it is an override awaiting a second person. A
        loan decided twice keeps the later one, as one upsert after the other would."""
        rows: dict[UUID, dict[str, Any]] = {}
        for event in events:
            final = not event.is_override
            rows[event.loan_id] = {
                "loan_id": event.loan_id,
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
        for chunk in _chunks(list(rows.values()), len(decisions.c)):
            statement = insert(decisions).values(chunk)
            replaced = {
                column.name: statement.excluded[column.name]
                for column in decisions.c
                if column.name != "loan_id"
            }
            await self.connection.execute(
                statement.on_conflict_do_update(index_elements=[decisions.c.loan_id], set_=replaced)
            )

    async def _approve_overrides(self, events: Sequence[ReviewOverrideApproved]) -> None:
        """A second person approved each override: the decision is final."""
        statement = (
            update(decisions)
            .where(decisions.c.decision_id == bindparam("approved"))
            .values(final=True, approved_by=bindparam("by"), final_at=bindparam("at"))
        )
        await self.connection.execute(
            statement,
            [
                {"approved": event.decision_id, "by": event.actor_id, "at": event.occurred_at}
                for event in events
            ],
        )

    async def _reject_overrides(self, events: Sequence[ReviewOverrideRejected]) -> None:
        """Each override was rejected: its loan has no decision until the analyst decides again."""
        await self.connection.execute(
            delete(decisions).where(
                decisions.c.decision_id.in_([event.decision_id for event in events])
            )
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
            select(final_counts.c.final).where(final_counts.c.run_id == run_id)
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
            .select_from(
                decisions.join(loans, and_(loans.c.run_id == d.run_id, loans.c.seq == d.seq))
            )
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


def _chunks(rows: list[dict[str, Any]], columns: int) -> Iterator[list[dict[str, Any]]]:
    """`rows` in slices that stay under PostgreSQL's limit of bind parameters per statement."""
    size = max(MAX_PARAMETERS // max(columns, 1), 1)
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
