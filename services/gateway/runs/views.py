"""From read-model rows to API responses (no queries, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.gateway.runs.domain import RunState
from services.gateway.runs.progress import ProgressFacts, StageCount, run_progress
from services.gateway.runs.quality import QualitySums, run_quality
from services.gateway.runs.schemas import (
    DataQuality,
    Dispositions,
    EligibilityChecks,
    PhaseProgressResponse,
    ProgressResponse,
    ReportFileResponse,
    RunResponse,
    RunSourceResponse,
    SummaryResponse,
)


def run_response(state: RunState) -> RunResponse:
    """A run as the API shows it."""
    return RunResponse(
        run_id=state.run_id,
        status=state.status,
        last_phase=state.last_phase,
        error=state.error,
        total_loans=state.total_loans,
        total_balance=state.total_balance,
        exceptions_count=state.exceptions_count,
        dispositions=Dispositions(
            to_purchase=state.to_purchase, projected=state.projected, rejected=state.rejected
        ),
        run_weekday=state.run_weekday,
        run_weekday_name=state.run_weekday_name,
        created_at=state.created_at,
        started_at=state.started_at,
        completed_at=state.completed_at,
        decided_at=state.decided_at,
        pdate=state.pdate,
        irr_target=state.irr_target,
        rule_set_version=state.rule_set_version,
        sales_team_id=state.sales_team_id,
        folder=state.folder,
        source=RunSourceResponse(kind=state.source_kind, location=state.source_location),  # type: ignore[arg-type]
        parent_run_id=state.parent_run_id,
        attempt=state.attempt,
        requested_by=state.requested_by,
    )


def progress_response(
    state: RunState, stages: Mapping[str, StageCount], reports: int, now: datetime
) -> ProgressResponse:
    """A run's progress at `now`."""
    archived = (
        len(state.archive_input or ()) + len(state.archive_output or ())
        if state.outputs_written_at
        else None
    )
    facts = ProgressFacts(
        status=state.status,
        failed_phase=state.failed_phase,
        started_at=state.started_at,
        tape_ingested_at=state.tape_ingested_at,
        outputs_written_at=state.outputs_written_at,
        completed_at=state.completed_at,
        total_loans=state.total_loans,
        reports_written=reports,
        archived_files=archived,
        stages=stages,
    )
    progress = run_progress(facts, now)
    last_phase = state.last_phase
    for phase in progress.phases:
        if phase.status != "pending" and not state.ended:
            last_phase = phase.phase
    return ProgressResponse(
        run_id=state.run_id,
        status=state.status,
        last_phase=last_phase,
        phases=[PhaseProgressResponse(**_fields(phase)) for phase in progress.phases],
        overall_percent=progress.overall_percent,
        estimated_seconds_left=progress.estimated_seconds_left,
    )


def _fields(phase: Any) -> dict[str, Any]:
    return {name: getattr(phase, name) for name in PhaseProgressResponse.model_fields}


def summary_response(
    state: RunState,
    counts: Mapping[str, int],
    sums: QualitySums,
    exceptions: Sequence[tuple[str, str, int]],
    rules_total: int,
) -> SummaryResponse:
    """A run's summary (SPEC §4): final figures once completed, running figures before."""
    by_type: dict[str, int] = {}
    by_severity: dict[str, int] = {"hard": 0, "soft": 0}
    for kind, severity, count in exceptions:
        by_type[kind] = by_type.get(kind, 0) + count
        by_severity[severity] = by_severity.get(severity, 0) + count
    quality = run_quality(sums, rules_total)
    total = state.total_loans if state.total_loans is not None else counts["loans"]
    exceptions_count = (
        state.exceptions_count if state.exceptions_count is not None else counts["exceptions"]
    )
    return SummaryResponse(
        run_id=state.run_id,
        total_loans=total,
        total_balance=state.total_balance,
        exceptions_count=exceptions_count,
        eligibility_checks=EligibilityChecks(
            total_loans=counts["loans"],
            eligible=counts["to_purchase"] + counts["projected"],
            to_purchase=counts["to_purchase"],
            projected=counts["projected"],
            rejected=counts["rejected"],
            exceptions_by_type=dict(sorted(by_type.items(), key=lambda item: (-item[1], item[0]))),
            exceptions_by_severity=by_severity,
            dq=DataQuality(
                completeness=quality.completeness,
                validity=quality.validity,
                uniqueness=quality.uniqueness,
                conformance=quality.conformance,
                dq_score=quality.dq_score,
            ),
        ),
    )


def report_response(row: Any) -> ReportFileResponse:
    """One report file."""
    return ReportFileResponse(
        key=row.key,
        name=row.storage_key.rsplit("/", 1)[-1],
        size=row.size,
        rows=row.rows,
        sha256=row.sha256,
        last_modified=row.written_at,
    )
