"""The envelope every event carries (SPEC §2), and the frozen base of every contract."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Contract(BaseModel):
    """Frozen, strict about unknown fields: a contract change is a new version, never an edit.

    Built from attributes too, so a contract can be made from its wire Struct (`contracts.wire`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)


class Envelope(Contract):
    """Fields every event carries; `event_id` is deterministic so a replay has the same id."""

    event_id: UUID = Field(description="Deterministic id (contracts.ids.event_id).")
    event_type: str = Field(description="What happened, past tense, e.g. `run.completed`.")
    schema_version: int = Field(default=1, description="Version of this event's schema.")
    run_id: UUID = Field(description="The run this fact belongs to.")
    occurred_at: datetime = Field(description="When the producing service recorded the fact.")
    producer: str = Field(description="The service that published it.", examples=["ingest"])
