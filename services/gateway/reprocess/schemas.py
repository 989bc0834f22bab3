"""A child run's diff against its parent (SPEC §7)."""

from uuid import UUID

from pydantic import BaseModel, Field


class LoanChange(BaseModel):
    """One loan whose outcome changed: disposition, exceptions or price."""

    loan_id: UUID = Field(description="The loan in the child run.")
    parent_loan_id: UUID | None = Field(description="The same row's loan in the parent run.")
    seller_loan_number: str | None
    source_file: str
    row: int
    disposition_before: str | None
    disposition_after: str
    exceptions_added: list[str]
    exceptions_removed: list[str]
    price_before: str | None
    price_after: str | None


class DiffResponse(BaseModel):
    """Counts by outcome and by disposition transition (`to_purchase->rejected`), and a page of
    the changed loans in tape order."""

    run_id: UUID
    parent_run_id: UUID
    counts: dict[str, int] = Field(
        examples=[{"changed": 1, "unchanged": 29, "to_purchase->rejected": 1}]
    )
    changes: list[LoanChange]
    skip: int
    limit: int
