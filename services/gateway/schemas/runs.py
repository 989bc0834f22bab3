"""Run shapes: the request, the run (SPEC §3.7 names), its progress, outputs and archive."""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.numbers import DEFAULT_IRR_TARGET
from contracts.runs import Phase, ReportKey
from services.gateway.domain import RunStatus


class RunRequest(BaseModel):
    """Run a tape: every CSV/XLSX file of a folder of the `inputs` area."""

    pdate: date = Field(description="Purchase date.", examples=["2026-11-23"])
    irr_target: Decimal = Field(DEFAULT_IRR_TARGET, gt=0, lt=100, examples=["8.05"])
    folder: str = Field("", max_length=1000, description="Folder under `inputs/` (your root).")
    sales_team_id: str | None = Field(None, description="The team the run belongs to.")


class ReprocessRequest(BaseModel):
    """A new run over a run's archived inputs, with new parameters when given."""

    pdate: date | None = None
    irr_target: Decimal | None = Field(None, gt=0, lt=100)


class Dispositions(BaseModel):
    """Loans per disposition."""

    to_purchase: int | None = None
    projected: int | None = None
    rejected: int | None = None


class RunSourceResponse(BaseModel):
    """Where the run's tape comes from."""

    kind: Literal["folder", "tape", "archive"] | None
    location: str | None


class RunResponse(BaseModel):
    """One run and its facts (SPEC §3.7)."""

    run_id: UUID
    status: RunStatus
    last_phase: Phase | None
    error: str | None
    total_loans: int | None
    total_balance: Decimal | None = Field(description="Exact sum of every parsed loan_amount.")
    exceptions_count: int | None
    dispositions: Dispositions
    run_weekday: int | None = Field(description="0 = Monday, from created_at in UTC.")
    run_weekday_name: str | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    pdate: date | None
    irr_target: Decimal | None
    sales_team_id: str | None
    folder: str | None
    source: RunSourceResponse
    parent_run_id: UUID | None
    attempt: int
    requested_by: str | None


PhaseStatus = Literal["pending", "running", "completed", "failed"]


class PhaseProgressResponse(BaseModel):
    """One phase of a run."""

    phase: Phase
    status: PhaseStatus
    processed: int
    total: int | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: Decimal | None


class ProgressResponse(BaseModel):
    """Every phase of a run, the overall percentage and an estimate of the time left."""

    run_id: UUID
    status: RunStatus
    last_phase: Phase | None
    phases: list[PhaseProgressResponse]
    overall_percent: Decimal = Field(examples=["57.14"])
    estimated_seconds_left: int | None


class ReportFileResponse(BaseModel):
    """One report of a run."""

    key: ReportKey
    name: str = Field(examples=["purchase_tape.csv"])
    size: int
    rows: int
    sha256: str
    last_modified: datetime


class ArchiveEntry(BaseModel):
    """One archived file, by its path relative to the run's archive."""

    path: str = Field(examples=["input/tape.csv"])
    name: str
    size: int
    last_modified: datetime


class ArchiveResponse(BaseModel):
    """A run's archived inputs and outputs."""

    input: list[ArchiveEntry]
    output: list[ArchiveEntry]
