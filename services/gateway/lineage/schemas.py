"""Lineage and stage shapes."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field


class HistoryEvent(BaseModel):
    """One event about a loan, with where it sits in the log."""

    kind: str = Field(
        description="ingested, evaluated, priced, dispositioned, scored, triage (an action on "
        "one of the loan's exceptions), review (an event of its credit review case), decided (a "
        "decision taken without a case), corrected.",
        examples=["evaluated"],
    )
    event_type: str = Field(examples=["loan.evaluated"])
    topic: str = Field(examples=["loan-engine.loans.evaluated.v1"])
    partition: int | None
    offset: int | None
    batch_seq: int | None = Field(
        None, description="The loan's batch (loan topics, scores and automatic decisions)."
    )
    index_in_batch: int | None = Field(None, description="The loan's place in its batch.")
    occurred_at: datetime | None
    source_file: str
    row: int
    details: dict[str, Any] = Field(default_factory=dict)


class LoanHistory(BaseModel):
    """Every event about a loan, in order."""

    loan_id: UUID
    run_id: UUID
    seller_loan_number: str | None
    source_file: str
    row: int
    events: list[HistoryEvent]


class StageResponse(BaseModel):
    """One stage of a run: records in and out, failed there, and the loans held up before it."""

    stage: str
    available: bool = Field(description="False for stages this deployment does not run yet.")
    records_in: int | None
    records_out: int | None
    failed: int
    stuck: int = Field(description="Records in but not (yet) out, not counting failed ones.")
    stuck_loan_ids: list[UUID] = Field(
        description="Loans of batches seen upstream but not here (at most 1,000)."
    )


class StagesResponse(BaseModel):
    """Every stage of a run in pipeline order."""

    run_id: UUID
    status: str
    stages: list[StageResponse]
