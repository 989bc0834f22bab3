"""Request and response shapes of the exception lifecycle endpoints (SPEC §7)."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from contracts.triage import ExceptionStatus
from services.gateway.facts.schemas import ExceptionResponse
from services.gateway.patterns import NO_NUL, decimal_between

BULK_MAX = 10_000


class ActionRequest(BaseModel):
    """The why of an action; `assignee` for assign."""

    notes: str | None = Field(
        None,
        max_length=4000,
        pattern=NO_NUL,
        description="Why (required to comment, resolve and waive).",
    )
    reason: str | None = Field(
        None,
        max_length=4000,
        pattern=NO_NUL,
        description="Another name for `notes` (a waiver's reason).",
    )
    assignee: UUID | None = Field(None, description="The user to assign to (assign only).")

    @model_validator(mode="after")
    def _reason_is_notes(self) -> "ActionRequest":
        if self.notes is None and self.reason is not None:
            self.notes = self.reason
        return self


class ExceptionFilter(BaseModel):
    """Which exceptions a bulk action covers (the `GET /exceptions` filters)."""

    model_config = {"extra": "forbid"}

    run_id: UUID | None = None
    exception_type: str | None = Field(None, max_length=200, pattern=NO_NUL)
    severity: Literal["hard", "soft"] | None = None
    rejection_criteria: str | None = Field(None, max_length=200, pattern=NO_NUL)
    status: ExceptionStatus | None = None
    assignee: UUID | None = None
    loan_id: UUID | None = None
    min_sla_age_hours: decimal_between(0, 1_000_000) | None = None  # type: ignore[valid-type]
    max_sla_age_hours: decimal_between(0, 1_000_000) | None = None  # type: ignore[valid-type]


class BulkRequest(ActionRequest):
    """A list of exception ids, or a filter, with the why (at most 10,000 exceptions)."""

    exception_ids: list[UUID] | None = Field(None, max_length=BULK_MAX)
    filter: ExceptionFilter | None = None

    @property
    def selects_once(self) -> bool:
        """Whether exactly one of `exception_ids` and `filter` is given (the route's 400)."""
        return (self.exception_ids is None) != (self.filter is None)


class ActionEntry(BaseModel):
    """One action of an exception's history: who, when, why, and what it changed."""

    event_id: UUID
    action: str = Field(examples=["acknowledge"])
    event_type: str = Field(examples=["exception.acknowledged"])
    actor_id: UUID
    actor_role: str
    notes: str | None
    assignee: UUID | None
    from_status: ExceptionStatus
    to_status: ExceptionStatus
    applied: bool = Field(description="False when the action lost a race and changed nothing.")
    reason: str | None = Field(description="Why it was not applied.")
    occurred_at: datetime


class ExceptionDetail(ExceptionResponse):
    """One exception, its lifecycle state and its full action history."""

    waiver_requested_by: UUID | None = None
    closed_at: datetime | None = None
    history: list[ActionEntry]


class Skipped(BaseModel):
    """An exception a bulk action left as it was, and why."""

    exception_id: UUID
    status: ExceptionStatus | None = Field(description="Its status (null if not found).")
    error: str


class BulkResponse(BaseModel):
    """What a bulk action did: one event per exception it applied to."""

    action: str
    requested: int
    applied: int
    pending: int = Field(description="Published but not yet folded when the answer was sent.")
    skipped: list[Skipped]
