"""A loan's history from the read models: every event about it with its place in the log.

History comes from sources, one per kind of fact: the loan topics (through the loan's batch and
its log positions), scoring (through its scored batch), triage actions on the loan's exceptions,
its credit review case and decisions, and corrections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import topics
from contracts.ids import exception_id
from services.gateway.corrections import repository as corrections
from services.gateway.lineage import repository as repo
from services.gateway.lineage.domain import BATCH_STAGES, in_history_order, place_of, widest
from services.gateway.lineage.schemas import HistoryEvent
from services.gateway.settings import GatewaySettings

HistorySource = Callable[[AsyncSession, GatewaySettings, Any], Awaitable[list[HistoryEvent]]]
STAGE_TOPICS = {
    "ingested": topics.LOANS_INGESTED,
    "evaluated": topics.LOANS_EVALUATED,
    "priced": topics.LOANS_PRICED,
    "dispositioned": topics.LOANS_DISPOSITIONED,
}
EPOCH = datetime.min.replace(tzinfo=UTC)


async def pipeline_events(
    session: AsyncSession, settings: GatewaySettings, loan: Any
) -> list[HistoryEvent]:
    """The loan's four loan-topic events, through its batch's positions."""
    place = place_of(loan.seq, widest(await repo.loans_per_batch(session, loan.run_id)))
    found: dict[str, tuple[int, int]] = {}
    times: dict[str, Any] = {}
    if place is not None:
        for row in await repo.positions(session, loan.run_id, [place.batch_seq]):
            found[row.stage] = (row.partition, row.offset)
        times = await repo.batch_times(session, loan.run_id, place.batch_seq)
    exceptions = await repo.exception_types(session, loan.run_id, loan.seq)
    details = {
        "ingested": {"seq": loan.seq, "duplicate_of_row": loan.duplicate_of_row},
        "evaluated": {
            "rule_set_version": loan.rule_set_version,
            "exceptions": exceptions,
            "dq_score": str(loan.dq_score),
        },
        "priced": {"pricing_spread": loan.pricing_spread, "final_price": loan.final_price},
        "dispositioned": {"disposition": loan.disposition},
    }
    events = []
    for stage in BATCH_STAGES:
        partition, offset = found.get(stage, (None, None))
        events.append(
            HistoryEvent(
                kind=stage,
                event_type=f"loan.{stage}",
                topic=settings.topic(STAGE_TOPICS[stage]),
                partition=partition,
                offset=offset,
                batch_seq=place.batch_seq if place else None,
                index_in_batch=place.index if place else None,
                occurred_at=times.get(stage),
                source_file=loan.source_file,
                row=loan.row,
                details=details[stage],
            )
        )
    return events


async def correction_events(
    session: AsyncSession, settings: GatewaySettings, loan: Any
) -> list[HistoryEvent]:
    """Corrections recorded against the loan."""
    return [
        HistoryEvent(
            kind="corrected",
            event_type="loan.corrected",
            topic=settings.topic(topics.CORRECTIONS),
            partition=row.partition,
            offset=row.offset,
            occurred_at=row.corrected_at,
            source_file=row.source_file,
            row=row.row,
            details={
                "correction_id": str(row.correction_id),
                "field": row.field,
                "value": row.value,
                "previous": row.previous,
                "reason": row.reason,
                "corrected_by": row.corrected_by,
            },
        )
        for row in await corrections.list_for_loan(session, loan.loan_id)
    ]


async def scored_events(
    session: AsyncSession, settings: GatewaySettings, loan: Any
) -> list[HistoryEvent]:
    """The loan's model score, at its scored batch's log position."""
    score = await repo.score_of(session, loan.run_id, loan.seq)
    if score is None:
        return []
    found = await repo.positions(session, loan.run_id, [score.batch_seq], "scored")
    position = found[0] if found else None
    return [
        HistoryEvent(
            kind="scored",
            event_type="loan.scored",
            topic=settings.topic(topics.LOANS_SCORED),
            partition=position.partition if position else None,
            offset=position.offset if position else None,
            batch_seq=score.batch_seq,
            occurred_at=score.scored_at,
            source_file=loan.source_file,
            row=loan.row,
            details={
                "model_version": score.model_version,
                "score": score.score,
                "probability_default": score.probability_default,
                "risk_category": score.risk_category,
                "routing_decision": score.routing_decision,
                "routing_reason": score.routing_reason,
            },
        )
    ]


async def triage_events(
    session: AsyncSession, settings: GatewaySettings, loan: Any
) -> list[HistoryEvent]:
    """Every action taken on the loan's exceptions (applied or refused by the fold)."""
    types = await repo.exception_types(session, loan.run_id, loan.seq)
    by_id = {exception_id(loan.loan_id, kind): kind for kind in types}
    if not by_id:
        return []
    return [
        HistoryEvent(
            kind="triage",
            event_type=row.event_type,
            topic=settings.topic(topics.TRIAGE),
            partition=row.partition,
            offset=row.offset,
            occurred_at=row.occurred_at,
            source_file=loan.source_file,
            row=loan.row,
            details={
                "exception_id": str(row.exception_id),
                "exception_type": by_id[row.exception_id],
                "action": row.action,
                "actor_id": str(row.actor_id),
                "actor_role": row.actor_role,
                "notes": row.notes,
                "assignee": str(row.assignee) if row.assignee else None,
                "from_status": row.from_status,
                "to_status": row.to_status,
                "applied": row.applied,
                "reason": row.reason,
            },
        )
        for row in await repo.triage_actions(session, list(by_id))
    ]


async def review_events(
    session: AsyncSession, settings: GatewaySettings, loan: Any
) -> list[HistoryEvent]:
    """The loan's credit review: its case's events, and decisions taken without a case."""
    events = [
        HistoryEvent(
            kind="review",
            event_type=row.event_type,
            topic=settings.topic(topics.REVIEWS),
            partition=row.partition,
            offset=row.offset,
            occurred_at=row.occurred_at,
            source_file=loan.source_file,
            row=loan.row,
            details={
                "case_id": str(row.case_id),
                "action": row.action,
                "actor_id": str(row.actor_id) if row.actor_id else None,
                "actor_role": row.actor_role,
                "notes": row.notes,
                "from_status": row.from_status,
                "to_status": row.to_status,
                "applied": row.applied,
                "reason": row.reason,
            },
        )
        for row in await repo.review_history(session, loan.loan_id)
    ]
    automatic = await repo.caseless_decisions(session, loan.loan_id)
    batch_seq, position = None, None
    score = await repo.score_of(session, loan.run_id, loan.seq) if automatic else None
    if score is not None:
        batch_seq = score.batch_seq
        found = await repo.positions(session, loan.run_id, [batch_seq], "decided")
        position = found[0] if found else None
    events.extend(
        HistoryEvent(
            kind="decided",
            event_type="review.auto_decisions_recorded",
            topic=settings.topic(topics.REVIEWS),
            partition=position.partition if position else None,
            offset=position.offset if position else None,
            batch_seq=batch_seq,
            occurred_at=row.decided_at,
            source_file=loan.source_file,
            row=loan.row,
            details={
                "decision_id": str(row.decision_id),
                "decision_type": row.decision_type,
                "outcome": row.outcome,
                "status": row.status,
                "score": row.score,
                "decided_role": row.decided_role,
            },
        )
        for row in automatic
    )
    return events


# The services' chain (each stage follows from the one before, whatever the clocks say), and
# what people and jobs did to the loan (in time order).
CHAIN_SOURCES: tuple[HistorySource, ...] = (pipeline_events, scored_events)
ACTION_SOURCES: tuple[HistorySource, ...] = (triage_events, review_events, correction_events)


async def history(
    session: AsyncSession, settings: GatewaySettings, loan: Any
) -> list[HistoryEvent]:
    """Every event about the loan: the chain's stages in their order, the rest merged in by
    time (an action before a stage's time comes before it)."""
    chain = [event for source in CHAIN_SOURCES for event in await source(session, settings, loan)]
    actions = [
        event for source in ACTION_SOURCES for event in await source(session, settings, loan)
    ]
    return in_history_order(chain, actions, lambda event: event.occurred_at or EPOCH)
