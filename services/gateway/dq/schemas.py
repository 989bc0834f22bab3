"""Data-quality shapes: a run's dimensions and fields, its weakest loans, means over time."""

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, Field


class Dimensions(BaseModel):
    """The four SPEC §3.4 dimensions (means, 4 decimals) and the mean dq_score (2 decimals)."""

    completeness: Decimal
    validity: Decimal
    uniqueness: Decimal
    conformance: Decimal
    dq_score: Decimal


class FieldQuality(BaseModel):
    """One loan field over a run: how often present, and how often valid when present."""

    field: str
    present: int
    completeness_pct: Decimal = Field(description="Present / loans, in percent (2 decimals).")
    valid: int | None = Field(description="Present and valid (numeric fields only).")
    validity_pct: Decimal | None = Field(description="Valid / present, in percent.")


class ScoreBand(BaseModel):
    """Loans whose dq_score lies in [low, high)."""

    low: Decimal
    high: Decimal
    loans: int


class DqSummary(BaseModel):
    """A run's data quality: dimensions, per field, and loans by score band."""

    run_id: UUID
    loans: int
    rule_set_version: str | None
    dimensions: Dimensions
    fields: list[FieldQuality]
    score_bands: list[ScoreBand]


class DqFailure(BaseModel):
    """A loan at or below the asked score, with what lowers it."""

    loan_id: UUID
    seq: int
    seller_loan_number: str | None
    source_file: str
    row: int
    dq_score: Decimal
    disposition: str
    missing_fields: list[str]
    invalid_fields: list[str]
    duplicate: bool


class DqTrendPoint(BaseModel):
    """One run's means, at its creation time."""

    run_id: UUID
    created_at: datetime | None
    status: str
    loans: int
    dimensions: Dimensions
