"""The audit log as the API shows it."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field


class AuditEntry(BaseModel):
    """One audited action: who, as what, did what to what, from where, with what result."""

    event_id: UUID
    occurred_at: datetime
    source: str = Field(examples=["api"])
    actor_id: UUID | None
    actor: str | None = Field(description="User name, e-mail addresses masked.")
    actor_role: str | None
    action: str = Field(examples=["exception_action.acknowledge"])
    method: str | None
    path: str | None
    target: dict[str, str]
    request_id: str | None
    client_address: str | None
    outcome: str = Field(examples=["success"])
    status_code: int | None
