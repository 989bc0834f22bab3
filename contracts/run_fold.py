"""A run folded from its `runs.v1` events (SPEC §3.7): the one place the lifecycle rules live.

Pure, total and replayable. Events of one run share a partition, so they arrive in order, but
delivery is at-least-once and a tape pushed twice replays its events: every step is idempotent,
an event of an earlier attempt changes nothing, and a replayed start cannot reopen a run that has
ended. The gateway's `runs` read model and the CLI's view of a run are shapes of `RunFacts`.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from functools import singledispatch
from typing import Literal
from uuid import UUID

from contracts.loans import RunParams
from contracts.runs import (
    DECISION_TAPE,
    PHASES,
    OutputsWritten,
    Phase,
    ReportFile,
    RunCompleted,
    RunDecided,
    RunFailed,
    RunReprocessRequested,
    RunRequested,
    RunRetryRequested,
    RunStarted,
    TapeIngested,
)

RunStatus = Literal["pending", "running", "completed", "failed", "decided"]
RUN_STATUSES: tuple[RunStatus, ...] = ("pending", "running", "completed", "failed", "decided")
DONE: frozenset[RunStatus] = frozenset({"completed", "decided"})
"""A run whose reports are written: `decided` is `completed` plus every loan's decision (§8)."""
SourceKind = Literal["folder", "tape", "archive"]


@dataclass(frozen=True, slots=True)
class RunFacts:
    """One run as its events tell it."""

    run_id: UUID
    status: RunStatus = "pending"
    attempt: int = 1
    last_phase: Phase | None = None
    """The furthest phase the current attempt has reached."""
    failed_phase: Phase | None = None
    retry_phase: Phase | None = None
    """The phase a requested retry resumes from, until the run starts, fails or completes again."""
    error: str | None = None
    source_kind: SourceKind | None = None
    source_location: str | None = None
    folder: str | None = None
    parent_run_id: UUID | None = None
    requested_by: str | None = None
    irr_target: Decimal | None = None
    pdate: date | None = None
    sales_team_id: str | None = None
    rule_set_version: str | None = None
    """The rule-set version the run was asked to evaluate with (None: the current one)."""
    created_at: datetime | None = None
    """The creation time a request or start carried."""
    first_seen_at: datetime | None = None
    """When the first event other than a retry request occurred: dates a run never seen created."""
    started_at: datetime | None = None
    tape_ingested_at: datetime | None = None
    outputs_written_at: datetime | None = None
    completed_at: datetime | None = None
    """When the run completed, or when its current attempt failed."""
    total_loans: int | None = None
    total_balance: Decimal | None = None
    batch_count: int | None = None
    duplicates: int | None = None
    files: tuple[str, ...] | None = None
    exceptions_count: int | None = None
    to_purchase: int | None = None
    projected: int | None = None
    rejected: int | None = None
    reports: tuple[ReportFile, ...] = ()
    archive_input: tuple[str, ...] | None = None
    archive_output: tuple[str, ...] | None = None
    decided_at: datetime | None = None
    """When every loan of the run had its final decision (the decision tape was written)."""

    @property
    def ended(self) -> bool:
        """Whether the run has reached a final status (a failed one may still be retried)."""
        return self.status in ("completed", "failed", "decided")


def later_phase(current: Phase | None, reached: Phase) -> Phase:
    """The further along of two phases (SPEC §3.7 order)."""
    if current is None or PHASES.index(reached) > PHASES.index(current):
        return reached
    return current


def fold(events: Iterable[object], run: RunFacts) -> RunFacts:
    """`run` after each of its `events`, in order."""
    for event in events:
        run = apply(event, run)
    return run


@singledispatch
def apply(_event: object, run: RunFacts) -> RunFacts:
    """The run after `event`; events of other types leave it unchanged."""
    return run


@apply.register
def _(event: RunRequested, run: RunFacts) -> RunFacts:
    run = _created(_seen(run, event.occurred_at), event.created_at, event.params)
    return replace(
        run,
        folder=event.folder,
        source_kind="folder",
        source_location=event.folder,
        requested_by=event.requested_by,
    )


@apply.register
def _(event: RunReprocessRequested, run: RunFacts) -> RunFacts:
    run = _created(_seen(run, event.occurred_at), event.created_at, event.params)
    return replace(
        run,
        source_kind="archive",
        source_location=str(event.parent_run_id),
        parent_run_id=event.parent_run_id,
        requested_by=event.requested_by,
    )


@apply.register
def _(event: RunRetryRequested, run: RunFacts) -> RunFacts:
    # Only a failed run is retried, once per attempt: a repeated request changes nothing.
    if event.attempt <= run.attempt or run.status != "failed":
        return run
    return replace(
        run,
        status="running",
        attempt=event.attempt,
        last_phase=event.phase,
        failed_phase=None,
        retry_phase=event.phase,
        error=None,
        completed_at=None,
    )


@apply.register
def _(event: RunStarted, run: RunFacts) -> RunFacts:
    run = _created(_seen(run, event.occurred_at), event.created_at, event.params)
    run = replace(
        run,
        source_kind=event.source.kind,
        source_location=event.source.location,
        folder=event.source.location if event.source.kind == "folder" else run.folder,
        parent_run_id=event.parent_run_id or run.parent_run_id,
        started_at=run.started_at or event.occurred_at,
        last_phase=later_phase(run.last_phase, "ingest"),
    )
    if event.attempt > run.attempt:
        return replace(run, status="running", attempt=event.attempt, error=None, retry_phase=None)
    if event.attempt < run.attempt:
        return run
    # The current attempt starting: a pending run (or a retry waiting) is running now; a replayed
    # start of an attempt that has already ended leaves it ended.
    if run.status == "pending":
        return replace(run, status="running", retry_phase=None)
    return replace(run, retry_phase=None)


@apply.register
def _(event: TapeIngested, run: RunFacts) -> RunFacts:
    run = _seen(run, event.occurred_at)
    return replace(
        run,
        status="running" if run.status == "pending" else run.status,
        total_loans=event.total_loans,
        total_balance=event.total_balance,
        batch_count=event.batch_count,
        duplicates=event.duplicates,
        files=tuple(event.files),
        tape_ingested_at=event.occurred_at,
        started_at=run.started_at or event.occurred_at,
        last_phase=later_phase(run.last_phase, "ingest"),
    )


@apply.register
def _(event: RunFailed, run: RunFacts) -> RunFacts:
    run = _seen(run, event.occurred_at)
    # A failure of an earlier attempt, or one reported after the run completed, is history.
    if event.attempt < run.attempt or run.status in DONE:
        return run
    return replace(
        run,
        status="failed",
        attempt=event.attempt,
        error=event.error,
        failed_phase=event.phase,
        last_phase=event.phase,
        retry_phase=None,
        completed_at=event.occurred_at,
    )


@apply.register
def _(event: OutputsWritten, run: RunFacts) -> RunFacts:
    run = _seen(run, event.occurred_at)
    return replace(
        run,
        reports=_keep_decision_tape(run.reports, event.reports),
        outputs_written_at=event.occurred_at,
        archive_input=tuple(event.archive_input),
        archive_output=_keep_decision_archive(run.archive_output, event.archive_output),
        last_phase=later_phase(run.last_phase, "archive"),
    )


@apply.register
def _(event: RunCompleted, run: RunFacts) -> RunFacts:
    run = _seen(run, event.occurred_at)
    return replace(
        run,
        # A completion delivered again after the run was decided leaves it decided.
        status="decided" if run.status == "decided" else "completed",
        error=None,
        failed_phase=None,
        retry_phase=None,
        total_loans=event.total_loans,
        total_balance=event.total_balance,
        exceptions_count=event.exceptions_count,
        to_purchase=event.dispositions.to_purchase,
        projected=event.dispositions.projected,
        rejected=event.dispositions.rejected,
        reports=_keep_decision_tape(run.reports, event.reports),
        completed_at=event.completed_at,
        started_at=run.started_at or event.occurred_at,
        last_phase=later_phase(run.last_phase, "archive"),
    )


@apply.register
def _(event: RunDecided, run: RunFacts) -> RunFacts:
    run = _seen(run, event.occurred_at)
    if run.status not in DONE:
        # Reporting decides a run only after completing it; the log keeps that order.
        return run
    reports = tuple(r for r in run.reports if r.key != event.report.key) + (event.report,)
    archive = tuple(k for k in run.archive_output or () if k != event.archive_output)
    return replace(
        run,
        status="decided",
        decided_at=event.decided_at,
        reports=reports,
        archive_output=(*archive, event.archive_output),
    )


def _keep_decision_tape(
    before: tuple[ReportFile, ...], reports: Iterable[ReportFile]
) -> tuple[ReportFile, ...]:
    """The four reports an event names, and the decision tape if the run has one already
    (a completion delivered again after the run was decided)."""
    return (*reports, *(r for r in before if r.key == DECISION_TAPE))


def _keep_decision_archive(before: tuple[str, ...] | None, keys: Iterable[str]) -> tuple[str, ...]:
    keys = tuple(keys)
    kept = tuple(k for k in before or () if k.endswith(f"/{DECISION_TAPE}.csv") and k not in keys)
    return (*keys, *kept)


def _created(run: RunFacts, created_at: datetime, params: RunParams) -> RunFacts:
    return replace(
        run,
        created_at=created_at,
        irr_target=params.irr_target,
        pdate=params.pdate,
        sales_team_id=params.sales_team_id,
        rule_set_version=params.rule_set_version or run.rule_set_version,
    )


def _seen(run: RunFacts, occurred_at: datetime) -> RunFacts:
    return run if run.first_seen_at is not None else replace(run, first_seen_at=occurred_at)
