"""Exception lifecycle events on `triage.v1`, keyed by exception id (SPEC §7).

Every action a person takes on an exception is one event: who (`actor_id`, `actor_role`), when
(`occurred_at`) and why (`notes`). The read model is folded from them by
`services.gateway.triage.domain.evolve`; a replay names the same exception because its id is
`uuid5(NS, f"{loan_id}/{exception_type}")` (`contracts.ids.exception_id`).
"""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, TypeAdapter

from contracts.base import Contract

ExceptionStatus = Literal[
    "new", "acknowledged", "in_progress", "waiver_pending", "resolved", "waived", "reopened"
]
EXCEPTION_STATUSES: tuple[ExceptionStatus, ...] = (
    "new",
    "acknowledged",
    "in_progress",
    "waiver_pending",
    "resolved",
    "waived",
    "reopened",
)


class TriageEvent(Contract):
    """What every exception action carries: the exception, the person, the time and the why."""

    event_id: UUID = Field(description="Unique per action; a replay carries the same id.")
    schema_version: int = Field(default=1, description="Version of this event's schema.")
    exception_id: UUID = Field(description="uuid5(NS, '{loan_id}/{exception_type}').")
    loan_id: UUID
    run_id: UUID = Field(description="The run whose loan raised the exception.")
    exception_type: str = Field(examples=["dti_ratio"])
    actor_id: UUID = Field(description="The user who acted.")
    actor_role: str = Field(examples=["analyst"])
    notes: str | None = Field(None, max_length=4000, description="Why (free text).")
    request_id: str | None = Field(None, description="The API request that published it.")
    occurred_at: datetime = Field(description="When the gateway accepted the action.")


class ExceptionAcknowledged(TriageEvent):
    """Someone has seen the exception (new → acknowledged)."""

    event_type: Literal["exception.acknowledged"] = "exception.acknowledged"


class ExceptionAssigned(TriageEvent):
    """The exception now belongs to `assignee` (the status does not change)."""

    event_type: Literal["exception.assigned"] = "exception.assigned"
    assignee: UUID = Field(description="The user the exception is assigned to.")


class ExceptionStarted(TriageEvent):
    """Work on the exception began (acknowledged | reopened → in_progress)."""

    event_type: Literal["exception.started"] = "exception.started"


class ExceptionCommented(TriageEvent):
    """A comment (`notes`) on the exception (the status does not change)."""

    event_type: Literal["exception.commented"] = "exception.commented"
    notes: str = Field(min_length=1, max_length=4000)


class ExceptionResolved(TriageEvent):
    """The exception was fixed (in_progress → resolved); `notes` say how."""

    event_type: Literal["exception.resolved"] = "exception.resolved"
    notes: str = Field(min_length=1, max_length=4000)


class ExceptionWaived(TriageEvent):
    """A soft exception was waived (in_progress → waived); `notes` say why."""

    event_type: Literal["exception.waived"] = "exception.waived"
    notes: str = Field(min_length=1, max_length=4000)


class ExceptionWaiverRequested(TriageEvent):
    """A hard exception's waiver awaits a second person (in_progress → waiver_pending)."""

    event_type: Literal["exception.waiver_requested"] = "exception.waiver_requested"
    notes: str = Field(min_length=1, max_length=4000)


class ExceptionWaiverApproved(TriageEvent):
    """A second person approved the pending waiver (waiver_pending → waived)."""

    event_type: Literal["exception.waiver_approved"] = "exception.waiver_approved"


class ExceptionWaiverRejected(TriageEvent):
    """A second person rejected the pending waiver (waiver_pending → in_progress)."""

    event_type: Literal["exception.waiver_rejected"] = "exception.waiver_rejected"


class ExceptionReopened(TriageEvent):
    """A resolved or waived exception needs work again (resolved | waived → reopened)."""

    event_type: Literal["exception.reopened"] = "exception.reopened"


TRIAGE_EVENTS: tuple[type[TriageEvent], ...] = (
    ExceptionAcknowledged,
    ExceptionAssigned,
    ExceptionStarted,
    ExceptionCommented,
    ExceptionResolved,
    ExceptionWaived,
    ExceptionWaiverRequested,
    ExceptionWaiverApproved,
    ExceptionWaiverRejected,
    ExceptionReopened,
)
AnyTriageEvent = Annotated[
    ExceptionAcknowledged
    | ExceptionAssigned
    | ExceptionStarted
    | ExceptionCommented
    | ExceptionResolved
    | ExceptionWaived
    | ExceptionWaiverRequested
    | ExceptionWaiverApproved
    | ExceptionWaiverRejected
    | ExceptionReopened,
    Field(discriminator="event_type"),
]
TRIAGE_EVENT: TypeAdapter[AnyTriageEvent] = TypeAdapter(AnyTriageEvent)
