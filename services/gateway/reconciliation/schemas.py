"""Reconciliation shapes: a run's summary, its findings, a review."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from services.gateway.paging import Page
from services.gateway.patterns import NO_NUL


class Counts(BaseModel):
    """Loans (and downstream records) by outcome."""

    matched: int
    mismatched: int
    source_only: int
    downstream_only: int


class FindingResponse(BaseModel):
    """A loan or downstream record that does not reconcile, with its review if any."""

    finding_id: UUID
    kind: str
    locator: str = Field(examples=["tape.csv/17", "report/purchase_tape/12"])
    seq: int | None
    loan_id: UUID | None
    source_file: str | None
    row: int | None
    seller_loan_number: str | None
    fields: list[dict[str, Any]] = Field(
        description="Each differing field: `field`, `where`, `source` and `downstream` values."
    )
    review: Literal["accept", "flag"] | None
    review_notes: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


class ReconciliationResponse(BaseModel):
    """A run's latest reconciliation and a page of its findings."""

    run_id: UUID
    status: Literal["clean", "findings", "error", "pending"]
    counts: Counts
    error: str | None
    reconciled_at: datetime | None
    findings: Page[FindingResponse]


class ReviewRequest(BaseModel):
    """Why a finding is accepted, or what the correction should fix."""

    notes: str = Field(min_length=1, max_length=2_000, pattern=NO_NUL)


class ReviewResponse(BaseModel):
    """A recorded review (projected from `corrections.v1`)."""

    finding_id: UUID
    run_id: UUID
    action: Literal["accept", "flag"]
    notes: str
    reviewed_by: str
    reviewed_at: datetime
