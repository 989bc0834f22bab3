"""A loan's history and a run's stages from the read models and, for held-up batches, the log.

History comes from sources, one per kind of fact: the loan topics (through the loan's batch and
its log positions) and corrections today; scoring, review and triage add a source each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import topics
from services.gateway.corrections import repository as corrections
from services.gateway.lineage import repository as repo
from services.gateway.lineage.batch_reader import loan_ids_at
from services.gateway.lineage.domain import BATCH_STAGES, STAGES, RunCounts, place_of, stage_reports
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


HISTORY_SOURCES: tuple[HistorySource, ...] = (pipeline_events, correction_events)


async def history(
    session: AsyncSession, settings: GatewaySettings, loan: Any
) -> list[HistoryEvent]:
    """Every event about the loan: by time, and the pipeline's stages in their order."""
    events = [
        event for source in HISTORY_SOURCES for event in await source(session, settings, loan)
    ]
    order = {kind: index for index, kind in enumerate(STAGES)}
    return sorted(
        events,
        key=lambda event: (
            event.occurred_at or EPOCH,
            order.get(event.kind, len(order)),
        ),
    )


async def stages(session: AsyncSession, settings: GatewaySettings, run: RunState) -> StagesResponse:
    """Every stage of the run, with the loan ids of batches held up before a stage."""
    batches = await repo.loans_per_batch(session, run.run_id)
    reported = None
    if run.outputs_written_at is not None and run.to_purchase is not None:
        reported = (run.to_purchase or 0) + (run.projected or 0) + (run.rejected or 0)
    counts = RunCounts(
        status=run.status,
        failed_phase=run.failed_phase,
        total_loans=run.total_loans,
        reported=reported,
        projected=await repo.projected_loans(session, run.run_id),
        batches=batches,
    )
    reports = stage_reports(counts)
    held = await _held_loan_ids(session, settings, run.run_id, reports)
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


def _widest(per_stage: dict[str, dict[int, int]]) -> dict[int, int]:
    """Loans per batch over every stage (a batch seen on any topic has its count)."""
    merged: dict[int, int] = {}
    for batches in per_stage.values():
        for seq, count in batches.items():
            merged[seq] = max(merged.get(seq, 0), count)
    return merged
