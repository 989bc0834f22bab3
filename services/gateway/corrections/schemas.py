"""Correction shapes: what an analyst sends, and a recorded correction."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from services.gateway.patterns import NO_NUL


class CorrectionRequest(BaseModel):
    """New cell text for one field of a loan, and why."""

    field: str = Field(
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="One of the eleven loan fields or one of the loan's kept columns.",
        examples=["ltv_ratio"],
    )
    value: str = Field(
        max_length=10_000, pattern=NO_NUL, description="The new cell text.", examples=["85"]
    )
    reason: str = Field(
        min_length=1, max_length=2_000, pattern=NO_NUL, examples=["Appraisal re-read"]
    )


class CorrectionResponse(BaseModel):
    """A recorded correction."""

    correction_id: UUID
    loan_id: UUID
    run_id: UUID
    source_file: str
    row: int
    seller_loan_number: str | None
    field: str
    value: str
    previous: str | None
    reason: str
    corrected_by: str
    corrected_at: datetime
