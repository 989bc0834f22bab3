"""Audit events of operator commands (`loan-engine admin ...`), which write to the database
directly: the CLI publishes them on audit.v1 like the API does for its requests."""

from __future__ import annotations

import asyncio
import getpass
from datetime import UTC, datetime
from uuid import uuid4

from contracts.audit import AuditRecorded, Outcome, mask_text
from contracts.topics import AUDIT
from services.common.kafka import KafkaPublisher
from services.gateway.audit.domain import clean
from services.gateway.settings import GatewaySettings

PUBLISH_TIMEOUT_SECONDS = 20.0


def cli_event(action: str, target: dict[str, str], outcome: Outcome) -> AuditRecorded:
    """The audit event of one operator command, its actor the operating-system user."""
    try:
        operator = getpass.getuser()
    except (KeyError, OSError):
        operator = None
    return AuditRecorded(
        event_id=uuid4(),
        occurred_at=datetime.now(UTC),
        source="cli",
        actor=mask_text(operator) if operator else None,
        actor_role="operator",
        action=action,
        target={name: clean(value) for name, value in target.items()},
        outcome=outcome,
    )


async def record_cli_action(
    settings: GatewaySettings, action: str, target: dict[str, str], outcome: Outcome
) -> None:
    """Publish the audit event of one operator command (TimeoutError if the broker is away)."""
    event = cli_event(action, target, outcome)
    key = next(iter(event.target.values()), None) or str(event.event_id)

    async def publish() -> None:
        async with KafkaPublisher(settings, request_timeout_ms=10_000) as publisher:
            await publisher.publish(AUDIT, key, event)

    await asyncio.wait_for(publish(), PUBLISH_TIMEOUT_SECONDS)
