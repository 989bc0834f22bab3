"""A run's read model folded from its events on `runs.v1` (SPEC §3.7): pure, total, replayable.

Events of one run share a partition, so they arrive in order; every step is idempotent, so a
re-delivered event leaves the state as it was.
"""

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import singledispatch
from typing import Literal
from uuid import UUID

from contracts.loans import RunParams
from contracts.runs import (
    PHASES,
    OutputsWritten,
    Phase,
    RunCompleted,
    RunFailed,
    RunReprocessRequested,
    RunRequested,
    RunRetryRequested,
    RunStarted,
    TapeIngested,
)

RunStatus = Literal["pending", "running", "completed", "failed"]
RUN_STATUSES: tuple[RunStatus, ...] = ("pending", "running", "completed", "failed")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RunState:
    """One run as the log tells it; the columns of the `runs` read model."""

    run_id: UUID
    status: RunStatus = "pending"
    last_phase: Phase | None = None
    failed_phase: Phase | None = None
    error: str | None = None
    source_kind: str | None = None
    source_location: str | None = None
    folder: str | None = None
    sales_team_id: str | None = None
    requested_by: str | None = None
    parent_run_id: UUID | None = None
    attempt: int = 1
    irr_target: Decimal | None = None
    pdate: date | None = None
    created_at: datetime | None = None
    run_weekday: int | None = None
    run_weekday_name: str | None = None
    started_at: datetime | None = None
    tape_ingested_at: datetime | None = None
    outputs_written_at: datetime | None = None
    completed_at: datetime | None = None
    total_loans: int | None = None
    total_balance: Decimal | None = None
    batch_count: int | None = None
    duplicates: int | None = None
    files: tuple[str, ...] | None = None
    exceptions_count: int | None = None
    to_purchase: int | None = None
    projected: int | None = None
    rejected: int | None = None
    archive_input: tuple[str, ...] | None = None
    archive_output: tuple[str, ...] | None = None

    @property
    def ended(self) -> bool:
        """Whether the run has reached a final status."""
        return self.status in ("completed", "failed")


RUN_FIELDS = tuple(f.name for f in fields(RunState))
_LISTS = ("files", "archive_input", "archive_output")
_DECIMALS = ("irr_target", "total_balance")


def state_from_mapping(values: Mapping[str, object]) -> RunState:
    """A run state from a stored row: lists become tuples, decimal texts Decimals."""
    found = {name: values[name] for name in RUN_FIELDS}
    for name in _LISTS:
        if found[name] is not None:
            found[name] = tuple(found[name])  # type: ignore[arg-type]
    for name in _DECIMALS:
        if found[name] is not None:
            found[name] = Decimal(str(found[name]))
    return RunState(**found)  # type: ignore[arg-type]


def state_to_row(state: RunState) -> tuple[object, ...]:
    """The stored row of a run state, in RUN_FIELDS order (decimals as their exact text)."""
    row: list[object] = []
    for name in RUN_FIELDS:
        value = getattr(state, name)
        if value is not None and name in _LISTS:
            value = list(value)
        elif value is not None and name in _DECIMALS:
            value = str(value)
        row.append(value)
    return tuple(row)


def weekday(created_at: datetime) -> tuple[int, str]:
    """The run's weekday (0 = Monday) and its English name, from its creation time in UTC."""
    day = created_at.astimezone(UTC).weekday()
    return day, WEEKDAY_NAMES[day]


def run_order(created_at: datetime) -> int:
    """Negated epoch microseconds: ascending order of it is newest-first order of runs."""
    delta = created_at.astimezone(UTC) - EPOCH
    return -((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def later_phase(current: Phase | None, reached: Phase) -> Phase:
    """The further along of two phases (SPEC §3.7 order)."""
    if current is None or PHASES.index(reached) > PHASES.index(current):
        return reached
    return current


def _created(state: RunState, created_at: datetime) -> RunState:
    day, name = weekday(created_at)
    return replace(state, created_at=created_at, run_weekday=day, run_weekday_name=name)


def _params(state: RunState, params: RunParams) -> RunState:
    return replace(
        state,
        irr_target=params.irr_target,
        pdate=params.pdate,
        sales_team_id=params.sales_team_id,
    )


def _seen(state: RunState, occurred_at: datetime) -> RunState:
    """A run first met through an event without a creation time dates from that event."""
    return state if state.created_at is not None else _created(state, occurred_at)


@singledispatch
def apply(_event: object, state: RunState) -> RunState:
    """The run after `event`; events of other types leave it unchanged."""
    return state


@apply.register
def _(event: RunRequested, state: RunState) -> RunState:
    state = _params(_created(state, event.created_at), event.params)
    return replace(
        state,
        folder=event.folder,
        source_kind="folder",
        source_location=event.folder,
        requested_by=event.requested_by,
    )


@apply.register
def _(event: RunReprocessRequested, state: RunState) -> RunState:
    state = _params(_created(state, event.created_at), event.params)
    return replace(
        state,
        source_kind="archive",
        source_location=str(event.parent_run_id),
        parent_run_id=event.parent_run_id,
        requested_by=event.requested_by,
    )


@apply.register
def _(event: RunRetryRequested, state: RunState) -> RunState:
    if event.attempt <= state.attempt or state.status != "failed":
        return state
    return replace(
        state,
        status="running",
        attempt=event.attempt,
        last_phase=event.phase,
        failed_phase=None,
        error=None,
        completed_at=None,
    )


@apply.register
def _(event: RunStarted, state: RunState) -> RunState:
    state = _params(_created(state, event.created_at), event.params)
    state = replace(
        state,
        source_kind=event.source.kind,
        source_location=event.source.location,
        folder=event.source.location if event.source.kind == "folder" else state.folder,
        parent_run_id=event.parent_run_id or state.parent_run_id,
        started_at=state.started_at or event.occurred_at,
        last_phase=later_phase(state.last_phase, "ingest"),
    )
    if event.attempt > state.attempt:
        return replace(state, status="running", attempt=event.attempt, error=None)
    if event.attempt == state.attempt and state.status == "pending":
        return replace(state, status="running")
    return state


@apply.register
def _(event: TapeIngested, state: RunState) -> RunState:
    state = _seen(state, event.occurred_at)
    return replace(
        state,
        status="running" if state.status == "pending" else state.status,
        total_loans=event.total_loans,
        total_balance=event.total_balance,
        batch_count=event.batch_count,
        duplicates=event.duplicates,
        files=tuple(event.files),
        tape_ingested_at=event.occurred_at,
        started_at=state.started_at or event.occurred_at,
        last_phase=later_phase(state.last_phase, "ingest"),
    )


@apply.register
def _(event: RunFailed, state: RunState) -> RunState:
    state = _seen(state, event.occurred_at)
    if event.attempt < state.attempt or state.status == "completed":
        return state
    return replace(
        state,
        status="failed",
        attempt=event.attempt,
        error=event.error,
        failed_phase=event.phase,
        last_phase=event.phase,
        completed_at=event.occurred_at,
    )


@apply.register
def _(event: OutputsWritten, state: RunState) -> RunState:
    state = _seen(state, event.occurred_at)
    return replace(
        state,
        outputs_written_at=event.occurred_at,
        archive_input=tuple(event.archive_input),
        archive_output=tuple(event.archive_output),
        last_phase=later_phase(state.last_phase, "archive"),
    )


@apply.register
def _(event: RunCompleted, state: RunState) -> RunState:
    state = _seen(state, event.occurred_at)
    return replace(
        state,
        status="completed",
        error=None,
        failed_phase=None,
        total_loans=event.total_loans,
        total_balance=event.total_balance,
        exceptions_count=event.exceptions_count,
        to_purchase=event.dispositions.to_purchase,
        projected=event.dispositions.projected,
        rejected=event.dispositions.rejected,
        completed_at=event.completed_at,
        started_at=state.started_at or event.occurred_at,
        last_phase=later_phase(state.last_phase, "archive"),
    )
