"""What a consumer publishes when it cannot process a message: it never blocks the partition."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from contracts.base import Contract


class DeadLetter(Contract):
    """The original message with where it came from and why it was set aside."""

    event_type: Literal["dead_letter"] = "dead_letter"
    schema_version: int = 1
    event_id: UUID = Field(description="uuid5 of topic/partition/offset: one per original.")
    service: str
    reason: str
    topic: str
    partition: int
    offset: int
    key: str | None = None
    payload: str = Field(description="The original value: UTF-8 text, else base64 ('b64:').")
    occurred_at: datetime
