"""Fold audit.v1 into `audit_log`: one row per event, idempotent on the event id.

Text is made storable (a NUL becomes U+FFFD) the same way on every replay: an event that carries
one must not stop the projector."""

from __future__ import annotations

import asyncpg
import orjson

from contracts.audit import AuditRecorded
from contracts.codec import decode
from services.gateway.patterns import storable
from services.gateway.tables import SCHEMA

COLUMNS = (
    "event_id",
    "occurred_at",
    "source",
    "actor_id",
    "actor",
    "actor_role",
    "action",
    "method",
    "path",
    "target",
    "request_id",
    "client_address",
    "outcome",
    "status_code",
)


def decode_audit(value: bytes) -> AuditRecorded:
    """One audit.v1 record, validated."""
    return decode(value, AuditRecorded)


async def write_audit(conn: asyncpg.Connection, events: list[AuditRecorded]) -> None:
    """Insert a chunk's audit events (inside the chunk's transaction)."""
    if not events:
        return
    names = ", ".join(f'"{name}"' for name in COLUMNS)
    slots = ", ".join(
        f"${i}::jsonb" if name == "target" else f"${i}" for i, name in enumerate(COLUMNS, 1)
    )
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.audit_log ({names}) VALUES ({slots}) "
        "ON CONFLICT (event_id) DO NOTHING",
        [
            (
                event.event_id,
                event.occurred_at,
                event.source,
                event.actor_id,
                storable(event.actor),
                storable(event.actor_role),
                storable(event.action),
                storable(event.method),
                storable(event.path),
                orjson.dumps(
                    {storable(k): storable(v) for k, v in event.target.items()},
                    option=orjson.OPT_SORT_KEYS,
                ).decode(),
                storable(event.request_id),
                storable(event.client_address),
                event.outcome,
                event.status_code,
            )
            for event in events
        ],
    )
