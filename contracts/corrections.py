"""Record corrections and reconciliation reviews on `corrections.v1`, keyed by loan id or run
id (SPEC §7).

A correction is new cell text for one field of one loan, recorded by a person: the archived input
is never edited. A reprocess that applies corrections reads the cell text from here instead.
"""

from typing import Literal
from uuid import UUID

from pydantic import Field

from contracts.base import Envelope


class LoanCorrected(Envelope):
    """An analyst recorded new text for a loan's field (gateway)."""

    event_type: Literal["loan.corrected"] = "loan.corrected"
    correction_id: UUID = Field(description="The correction's own id.")
    loan_id: UUID = Field(description="The corrected loan (the run is the envelope's run_id).")
    source_file: str = Field(examples=["tape.csv"])
    row: int = Field(ge=1, description="The loan's data row in its source file.")
    seller_loan_number: str | None = None
    sales_team_id: str | None = Field(None, description="The run's team, for scoping.")
    field: str = Field(
        description="One of the eleven loan fields or a kept column (normalised name).",
        examples=["ltv_ratio"],
    )
    value: str = Field(description="The new cell text, read at ingest as a cell would be.")
    previous: str | None = Field(None, description="The field's value in the loan's run.")
    reason: str = Field(min_length=1, examples=["Appraisal re-read: LTV is 85, not 58"])
    corrected_by: str = Field(description="Username of who recorded it.")


class FindingReviewed(Envelope):
    """A person accepted a reconciliation finding (with notes) or flagged it for correction."""

    event_type: Literal["reconciliation.finding_reviewed"] = "reconciliation.finding_reviewed"
    finding_id: UUID = Field(description="uuid5(NS, f'{run_id}/reconciliation/{locator}').")
    locator: str = Field(examples=["tape.csv/17", "report/purchase_tape/12"])
    loan_id: UUID | None = None
    action: Literal["accept", "flag"]
    notes: str = Field(min_length=1)
    reviewed_by: str
