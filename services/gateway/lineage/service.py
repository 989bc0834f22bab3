"""A run's stages from the read models and, for held-up batches, the log."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.lineage import repository as repo
from services.gateway.lineage.batch_reader import loan_ids_at
from services.gateway.lineage.domain import STAGES, RunCounts, stage_reports
from services.gateway.lineage.history import STAGE_TOPICS
from services.gateway.lineage.schemas import StageResponse, StagesResponse
from services.gateway.runs.domain import RunState
from services.gateway.settings import GatewaySettings

STUCK_BATCHES_READ = 10
STUCK_IDS_SHOWN = 1_000


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
