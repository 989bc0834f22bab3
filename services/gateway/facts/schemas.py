"""Exception and loan shapes (SPEC §4 names)."""

from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.loans import Disposition
from contracts.triage import ExceptionStatus


class ExceptionResponse(BaseModel):
    """One exception raised on one loan, with where it is in its lifecycle (SPEC §7)."""

    exception_id: UUID = Field(description="uuid5(NS, '{loan_id}/{exception_type}').")
    status: ExceptionStatus
    assignee: UUID | None = None
    sla_age_seconds: int | None = Field(
        description="Seconds since the exception was raised, until closed (or now if open)."
    )
    status_updated_at: datetime | None = Field(None, description="When its last action was.")
    run_id: UUID
    loan_id: UUID
    seller_loan_number: str | None
    source_file: str
    row: int
    exception_type: str = Field(examples=["dti_ratio"])
    category: str = Field(examples=["credit"])
    severity: Literal["hard", "soft"]
    message: str
    rejection_criteria: str = Field(examples=["notebook.dti_exceeds_maximum"])
    disposition: Disposition
    created_at: datetime | None = Field(description="When the loan's run was created.")


class LoanResponse(BaseModel):
    """One loan's data as read from the tape, its disposition and its price."""

    loan_id: UUID
    run_id: UUID
    seq: int = Field(description="Position in the run's tape order, from 1.")
    source_file: str
    row: int
    seller_loan_number: str | None
    loan_amount: str | None
    note_rate: str | None
    ltv_ratio: str | None
    dti_ratio: str | None
    credit_score: str | None
    property_type: str | None
    occupancy_status: str | None
    loan_purpose: str | None
    purchase_price: str | None
    appraisal_value: str | None
    extra: dict[str, str] = Field(description="The tape's other columns.")
    invalid_fields: list[str]
    duplicate_of: str | None = Field(description="`FILE:ROW` of the first occurrence.")
    disposition: Disposition
    pricing_spread: str | None
    final_price: str | None
    exceptions_count: int
    dq_score: Decimal
    rule_set_version: str
