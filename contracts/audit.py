"""The audit trail on `audit.v1`: one event per write action, login and logout (SPEC §7).

Secrets never appear (no passwords, tokens or request bodies); e-mail addresses and free text are
masked before the event is built (`mask_text`).
"""

import re
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from contracts.base import Contract

Outcome = Literal["success", "denied", "failed", "error"]
Source = Literal["api", "cli"]

EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}")


def mask_text(text: str) -> str:
    """The text with every e-mail address reduced to its first letter: `j***@***`."""
    return EMAIL.sub(lambda match: f"{match.group(1)}***@***", text)


class AuditRecorded(Contract):
    """Someone did something (or tried to): who, as what, to what, from where, with what result."""

    event_type: Literal["audit.recorded"] = "audit.recorded"
    schema_version: int = 1
    event_id: UUID = Field(description="Unique per audited action.")
    occurred_at: datetime
    source: Source = Field(description="`api` (the gateway) or `cli` (an operator command).")
    actor_id: UUID | None = Field(None, description="The user, when known.")
    actor: str | None = Field(None, description="The user name (e-mail addresses masked).")
    actor_role: str | None = Field(None, examples=["analyst"])
    action: str = Field(description="What was done.", examples=["exceptions.acknowledge"])
    method: str | None = Field(None, examples=["POST"])
    path: str | None = Field(None, description="The route template.", examples=["/api/runs"])
    target: dict[str, str] = Field(
        default_factory=dict, description="What it was done to: ids by name (masked)."
    )
    request_id: str | None = None
    client_address: str | None = None
    outcome: Outcome
    status_code: int | None = Field(None, description="The HTTP status answered.")
