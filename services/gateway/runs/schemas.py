"""Run shapes: the request, the run (SPEC §3.7 names), its progress, outputs and archive."""

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from contracts.numbers import DEFAULT_IRR_TARGET
from contracts.runs import OutputKey, Phase
from services.gateway.patterns import TEAM_ID
from services.gateway.runs.domain import RunStatus

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A percentage above 0 and below 100 written as text: what `irr_target` accepts as a string.
PERCENT_TEXT = r"^(([1-9][0-9]?|0[1-9])(\.[0-9]+)?|0{1,2}\.[0-9]*[1-9][0-9]*)$"
_PERCENT_TEXT = re.compile(PERCENT_TEXT)


def _iso_date(value: object) -> object:
    """Only a `YYYY-MM-DD` string (or a date): never a number of seconds or a datetime."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError("must be a date written YYYY-MM-DD")


def _percent_text(value: object) -> object:
    if isinstance(value, str) and not _PERCENT_TEXT.fullmatch(value):
        raise ValueError("must be a number above 0 and below 100, such as 8.05")
    if isinstance(value, bool):
        raise ValueError("must be a number above 0 and below 100, such as 8.05")
    return value


Day = Annotated[date, BeforeValidator(_iso_date)]
Percent = Annotated[
    Decimal,
    BeforeValidator(_percent_text),
    Field(gt=0, lt=100),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100},
                {"type": "string", "pattern": PERCENT_TEXT},
            ],
            "examples": ["8.05"],
        }
    ),
]


class RunRequest(BaseModel):
    """Run a tape: every CSV/XLSX file of a folder of the `inputs` area."""

    pdate: Day = Field(description="Purchase date.", examples=["2026-11-23"])
    irr_target: Percent = DEFAULT_IRR_TARGET
    folder: str = Field("", max_length=1000, description="Folder under `inputs/` (your root).")
    sales_team_id: str | None = Field(
        None, max_length=100, pattern=TEAM_ID, description="The team the run belongs to."
    )


MAX_REPROCESS_LOANS = 10_000


class ReprocessRequest(BaseModel):
    """A new run over a run's archived inputs, with new parameters when given (SPEC §7)."""

    pdate: Day | None = None
    irr_target: Percent | None = None
    rule_set_version: str | None = Field(
        None, max_length=50, description="Rule-set version to evaluate with (default: current)."
    )
    apply_corrections: bool = Field(
        False, description="Put the loans' recorded corrections in place of their cell text."
    )
    loan_ids: list[UUID] | None = Field(
        None,
        min_length=1,
        max_length=MAX_REPROCESS_LOANS,
        description="Only these loans of the run (a partial run whose reports hold just them).",
    )


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
    decided_at: datetime | None = Field(
        None, description="When every loan had its final decision (status `decided`, SPEC §8)."
    )
    pdate: date | None
    irr_target: Decimal | None
    rule_set_version: str | None = Field(
        description="The rule-set version the run was asked to evaluate with; null: the rules "
        "service's current one.",
        examples=["2026.12.1"],
    )
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

    key: OutputKey
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


class DataQuality(BaseModel):
    """A run's mean quality dimensions (4 decimals) and mean dq_score (2 decimals)."""

    completeness: Decimal
    validity: Decimal
    uniqueness: Decimal
    conformance: Decimal
    dq_score: Decimal


class EligibilityChecks(BaseModel):
    """The dispositioned loans of a run, by outcome."""

    total_loans: int
    eligible: int = Field(description="Loans without a hard exception.")
    to_purchase: int
    projected: int
    rejected: int
    exceptions_by_type: dict[str, int]
    exceptions_by_severity: dict[str, int]
    dq: DataQuality


class SummaryResponse(BaseModel):
    """A run's totals and eligibility outcome."""

    run_id: UUID
    total_loans: int
    total_balance: Decimal | None
    exceptions_count: int
    eligibility_checks: EligibilityChecks
