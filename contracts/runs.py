"""Run lifecycle events on `runs.v1`, keyed by run id (SPEC §2, §3.7)."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, TypeAdapter

from contracts.base import Contract, Envelope
from contracts.loans import RowRef, RunParams

Phase = Literal["ingest", "validate", "eligibility", "pricing", "disposition", "output", "archive"]
PHASES: tuple[Phase, ...] = (
    "ingest",
    "validate",
    "eligibility",
    "pricing",
    "disposition",
    "output",
    "archive",
)
ReportKey = Literal["purchase_tape", "projected_tape", "rejection_report", "exception_summary"]
REPORT_KEYS: tuple[ReportKey, ...] = (
    "purchase_tape",
    "projected_tape",
    "rejection_report",
    "exception_summary",
)
DecisionTapeKey = Literal["decision_tape"]
DECISION_TAPE: DecisionTapeKey = "decision_tape"
OutputKey = ReportKey | DecisionTapeKey
OUTPUT_KEYS: tuple[OutputKey, ...] = (*REPORT_KEYS, DECISION_TAPE)
"""The four §3 reports and, once every loan of the run is decided, the decision tape (§8)."""


class RunSource(Contract):
    """Where a run's tape comes from."""

    kind: Literal["folder", "tape", "archive"] = Field(
        description="`folder` of the inputs area, a producer's `tape`, or a parent's `archive`."
    )
    location: str = Field(
        description="Folder path, tape id, or parent run id.", examples=["2026-11-23"]
    )


class RunRequested(Envelope):
    """A user asked for a run over a folder of the storage `inputs` area (gateway, CLI)."""

    event_type: Literal["run.requested"] = "run.requested"
    params: RunParams
    folder: str = Field(default="", description="Folder under `inputs/`; empty is its root.")
    requested_by: str | None = None
    created_at: datetime


class CellCorrection(Contract):
    """New text for one cell of the parent's tape, from a recorded correction (SPEC §7)."""

    source_file: str
    row: int = Field(ge=1)
    field: str = Field(description="Normalised column name (a loan field or a kept column).")
    value: str
    correction_id: UUID


class ReprocessEdits(Contract):
    """What a reprocess changes in its parent's archived tape, resolved by the gateway.

    Ingest needs nothing else: the corrections to put in place of cell text, and the rows to
    keep (a partial run); `rows=None` keeps every row.
    """

    corrections: tuple[CellCorrection, ...] = ()
    rows: tuple[RowRef, ...] | None = Field(
        default=None, description="Only these rows are reprocessed (a partial run)."
    )


class RunReprocessRequested(Envelope):
    """A new run over a parent run's archived inputs, possibly with new parameters.

    `apply_corrections` and `edits` are additive and optional: left off the wire when unset, so
    a plain reprocess serialises exactly as schema version 1 always did.
    """

    event_type: Literal["run.reprocess_requested"] = "run.reprocess_requested"
    params: RunParams
    parent_run_id: UUID
    requested_by: str | None = None
    created_at: datetime
    apply_corrections: bool = Field(
        default=False,
        exclude_if=lambda value: not value,
        description="Whether the parent's recorded corrections replace their cells' text.",
    )
    edits: ReprocessEdits | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Corrections to apply and rows to keep, resolved by the gateway.",
    )


class RunRetryRequested(Envelope):
    """A failed run is to resume from its failed phase."""

    event_type: Literal["run.retry_requested"] = "run.retry_requested"
    attempt: int = Field(ge=2, description="The attempt this retry starts.")
    phase: Phase
    requested_by: str | None = None


class RunStarted(Envelope):
    """Ingest has begun reading the run's tape."""

    event_type: Literal["run.started"] = "run.started"
    params: RunParams
    source: RunSource
    created_at: datetime = Field(description="The run's creation time (run_weekday is from it).")
    parent_run_id: UUID | None = None
    attempt: int = 1
    edits: ReprocessEdits | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="A reprocess's edits, kept so a retry of ingest redoes them.",
    )


class TapeIngested(Envelope):
    """Every loan of the run has been published; counts are final."""

    event_type: Literal["run.tape_ingested"] = "run.tape_ingested"
    total_loans: int = Field(ge=0)
    total_balance: Decimal = Field(description="Exact sum of every parsed loan_amount.")
    batch_count: int = Field(ge=0)
    files: tuple[str, ...] = Field(description="Source files in processing order.")
    duplicates: int = Field(ge=0)


class RunFailed(Envelope):
    """The run stopped at `phase`; `error` says why in words a user can act on."""

    event_type: Literal["run.failed"] = "run.failed"
    phase: Phase
    error: str
    attempt: int = 1


class ReportFile(Contract):
    """One written report."""

    key: OutputKey
    uri: str = Field(description="Absolute local path or s3:// URI.")
    storage_key: str = Field(examples=["outputs/0b1c.../purchase_tape.csv"])
    sha256: str
    size: int = Field(ge=0)
    rows: int = Field(ge=0, description="Data rows, header excluded.")


class Dispositions(Contract):
    to_purchase: int = 0
    projected: int = 0
    rejected: int = 0


class OutputsWritten(Envelope):
    """The four reports are written and the run's inputs and outputs archived."""

    event_type: Literal["run.outputs_written"] = "run.outputs_written"
    reports: tuple[ReportFile, ...]
    archive_input: tuple[str, ...] = Field(description="Storage keys of the archived inputs.")
    archive_output: tuple[str, ...] = Field(description="Storage keys of the archived reports.")


class RunCompleted(Envelope):
    """The run is done: its final facts (SPEC §3.7)."""

    event_type: Literal["run.completed"] = "run.completed"
    total_loans: int
    total_balance: Decimal
    exceptions_count: int
    dispositions: Dispositions
    reports: tuple[ReportFile, ...]
    completed_at: datetime


class DecisionCounts(Contract):
    """A decided run's loans by final decision type (SPEC §8)."""

    auto_approve: int = 0
    auto_decline: int = 0
    analyst_approve: int = 0
    analyst_approve_with_conditions: int = 0
    analyst_decline: int = 0

    @property
    def bought(self) -> int:
        """Loans the desk buys: approved by the machine or by a person (conditions or not)."""
        return self.auto_approve + self.analyst_approve + self.analyst_approve_with_conditions


class RunDecided(Envelope):
    """Every loan of the completed run has a final decision: the decision tape is written
    and archived (SPEC §8). The run's status becomes `decided`."""

    event_type: Literal["run.decided"] = "run.decided"
    decisions: DecisionCounts
    bought: int = Field(ge=0, description="Rows of the decision tape: loans bought.")
    report: ReportFile = Field(description="The decision tape (`decision_tape.csv`).")
    archive_output: str = Field(
        description="Storage key of the archived decision tape.",
        examples=["archive/0b1c.../output/decision_tape.csv"],
    )
    decided_at: datetime = Field(description="When the run's last decision became final.")


RunEvent = Annotated[
    RunRequested
    | RunReprocessRequested
    | RunRetryRequested
    | RunStarted
    | TapeIngested
    | RunFailed
    | OutputsWritten
    | RunCompleted
    | RunDecided,
    Field(discriminator="event_type"),
]
RUN_EVENT = TypeAdapter(RunEvent)
