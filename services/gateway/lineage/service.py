"""A loan's history and a run's stages from the read models and, for held-up batches, the log.

History comes from sources, one per kind of fact: the loan topics (through the loan's batch and
its log positions), scoring (through its scored batch), triage actions on the loan's exceptions,
its credit review case and decisions, and corrections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import topics
from contracts.ids import exception_id
from services.gateway.corrections import repository as corrections
from services.gateway.lineage import repository as repo
from services.gateway.lineage.batch_reader import loan_ids_at
from services.gateway.lineage.domain import (
    BATCH_STAGES,
    STAGES,
    RunCounts,
    in_history_order,
    place_of,
    stage_reports,
)
from services.gateway.lineage.schemas import HistoryEvent, StageResponse, StagesResponse
from services.gateway.runs.domain import RunState
from services.gateway.settings import GatewaySettings

HistorySource = Callable[[AsyncSession, GatewaySettings, Any], Awaitable[list[HistoryEvent]]]
STAGE_TOPICS = {
    "ingested": topics.LOANS_INGESTED,
    "evaluated": topics.LOANS_EVALUATED,
    "priced": topics.LOANS_PRICED,
    "dispositioned": topics.LOANS_DISPOSITIONED,
}
STUCK_BATCHES_READ = 10
STUCK_IDS_SHOWN = 1_000
EPOCH = datetime.min.replace(tzinfo=UTC)


async def pipeline_events(
    session: AsyncSession, settings: GatewaySettings, loan: Any
) -> list[HistoryEvent]:
    """The loan's four loan-topic events, through its batch's positions."""
    place = place_of(loan.seq, _widest(await repo.loans_per_batch(session, loan.run_id)))
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


async def stages(session: AsyncSession, settings: GatewaySettings, run: RunState) -> StagesResponse:
    """Every stage of the run, with the loan ids of batches held up before a stage."""
    batches = await repo.loans_per_batch(session, run.run_id)
    reported = None
    if run.outputs_written_at is not None and run.to_purchase is not None:
        reported = (run.to_purchase or 0) + (run.projected or 0) + (run.rejected or 0)
    scoring = await repo.scoring_deployed(session)
    counts = RunCounts(
        status=run.status,
        failed_phase=run.failed_phase,
        total_loans=run.total_loans,
        reported=reported,
        projected=await repo.projected_loans(session, run.run_id),
        batches=batches,
        scored=await repo.scored_loans(session, run.run_id) if scoring else None,
        decided=await repo.decided_loans(session, run.run_id) if scoring else None,
    )
    reports = stage_reports(counts)
    held = await _held_loan_ids(session, settings, run.run_id, reports)
    held.update(await _unscored_or_undecided(session, run.run_id, reports))
    return StagesResponse(
        run_id=run.run_id,
        status=run.status,
        stages=[
            StageResponse(
                stage=report.stage,
                available=report.available,
                records_in=report.records_in,
                records_out=report.records_out,
                failed=report.failed,
                stuck=report.stuck,
                stuck_loan_ids=[UUID(text) for text in held.get(report.stage, [])],
            )
            for report in reports
        ],
    )


async def _held_loan_ids(
    session: AsyncSession, settings: GatewaySettings, run_id: UUID, reports: list[Any]
) -> dict[str, list[str]]:
    """Loan ids of the first few held-up batches of each stage, read from the upstream topic."""
    wanted: list[tuple[str, str, int]] = []  # (stage, upstream stage, batch_seq)
    for report in reports:
        upstream = STAGES[STAGES.index(report.stage) - 1]
        wanted.extend(
            (report.stage, upstream, seq) for seq in report.stuck_batches[:STUCK_BATCHES_READ]
        )
    if not wanted:
        return {}
    rows = await repo.positions(session, run_id, sorted({seq for _, _, seq in wanted}))
    at = {(row.stage, row.batch_seq): (row.partition, row.offset) for row in rows}
    places = [
        (stage, (settings.topic(STAGE_TOPICS[upstream]), *at[(upstream, seq)]))
        for stage, upstream, seq in wanted
        if (upstream, seq) in at
    ]
    ids = await loan_ids_at(settings, [place for _, place in places])
    held: dict[str, list[str]] = {}
    for (stage, _), loan_ids in zip(places, ids, strict=True):
        shown = held.setdefault(stage, [])
        shown.extend(loan_ids[: STUCK_IDS_SHOWN - len(shown)])
    return held


async def _unscored_or_undecided(
    session: AsyncSession, run_id: UUID, reports: list[Any]
) -> dict[str, list[str]]:
    """Loan ids held up before scoring and before a final decision, from the read models."""
    queries = {"scored": repo.unscored_loan_ids, "decided": repo.undecided_loan_ids}
    held: dict[str, list[str]] = {}
    for report in reports:
        if report.stage in queries and report.stuck:
            found = await queries[report.stage](session, run_id, STUCK_IDS_SHOWN)
            held[report.stage] = [str(loan_id) for loan_id in found]
    return held


def _widest(per_stage: dict[str, dict[int, int]]) -> dict[int, int]:
    """Loans per batch over every stage (a batch seen on any topic has its count)."""
    merged: dict[int, int] = {}
    for batches in per_stage.values():
        for seq, count in batches.items():
            merged[seq] = max(merged.get(seq, 0), count)
    return merged
