"""Fold triage.v1 into the read models: `exception_triage` (state) and `exception_actions`
(every event, applied or rejected, in log order).

Idempotent: an event already recorded (a re-delivery, a replay over a partial chunk) is skipped.
Text is made storable (a NUL becomes U+FFFD), the same on every replay. The fold re-checks every
rule (`domain.evolve`), so of two actions that raced through the API the later one is recorded
as rejected, with the reason, and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from contracts.codec import decode_union
from contracts.triage import TRIAGE_EVENT, TriageEvent
from services.gateway.patterns import storable
from services.gateway.tables import SCHEMA
from services.gateway.triage.domain import (
    ACTION_OF_EVENT,
    TriageError,
    TriageState,
    evolve,
)

STATE_COLUMNS = (
    "exception_id",
    "loan_id",
    "run_id",
    "exception_type",
    "status",
    "assignee",
    "waiver_requested_by",
    "actions",
    "updated_at",
    "closed_at",
)
ACTION_COLUMNS = (
    "event_id",
    "exception_id",
    "partition",
    "offset",
    "event_type",
    "action",
    "actor_id",
    "actor_role",
    "notes",
    "assignee",
    "from_status",
    "to_status",
    "applied",
    "reason",
    "request_id",
    "occurred_at",
)


@dataclass(frozen=True, slots=True)
class Positioned:
    """A triage event with where it sits in the log (its history order)."""

    partition: int
    offset: int
    event: TriageEvent


def decode_triage(partition: int, offset: int, value: bytes) -> Positioned:
    """One triage.v1 record, validated."""
    return Positioned(partition, offset, decode_union(value, TRIAGE_EVENT))


def _state(row: Any) -> TriageState:
    return TriageState(
        status=row["status"],
        assignee=row["assignee"],
        waiver_requested_by=row["waiver_requested_by"],
        actions=row["actions"],
        updated_at=row["updated_at"],
        closed_at=row["closed_at"],
    )


async def write_triage(conn: asyncpg.Connection, items: list[Positioned]) -> None:
    """Apply a chunk's triage events in log order (inside the chunk's transaction)."""
    if not items:
        return
    seen = {
        row["event_id"]
        for row in await conn.fetch(
            f"SELECT event_id FROM {SCHEMA}.exception_actions WHERE event_id = ANY($1::uuid[])",
            [item.event.event_id for item in items],
        )
    }
    ids = list(dict.fromkeys(item.event.exception_id for item in items))
    states: dict[UUID, TriageState] = {
        row["exception_id"]: _state(row)
        for row in await conn.fetch(
            f"SELECT * FROM {SCHEMA}.exception_triage WHERE exception_id = ANY($1::uuid[])", ids
        )
    }
    changed: dict[UUID, TriageEvent] = {}
    actions: list[tuple[Any, ...]] = []
    for item in items:
        event = item.event
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        before = states.get(event.exception_id, TriageState())
        try:
            after, reason = evolve(before, event), None
        except TriageError as error:
            after, reason = before, str(error)
        if reason is None:
            states[event.exception_id] = after
            changed[event.exception_id] = event
        actions.append(_action_row(item, before, after, reason))
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.exception_triage ({_names(STATE_COLUMNS)}) "
        f"VALUES ({_slots(STATE_COLUMNS)}) ON CONFLICT (exception_id) DO UPDATE SET "
        + ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in STATE_COLUMNS[4:]),
        [_state_row(event, states[exception_id]) for exception_id, event in changed.items()],
    )
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.exception_actions ({_names(ACTION_COLUMNS)}) "
        f"VALUES ({_slots(ACTION_COLUMNS)}) ON CONFLICT (event_id) DO NOTHING",
        actions,
    )


def _names(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


def _slots(columns: tuple[str, ...]) -> str:
    return ", ".join(f"${i}" for i in range(1, len(columns) + 1))


def _state_row(event: TriageEvent, state: TriageState) -> tuple[Any, ...]:
    return (
        event.exception_id,
        event.loan_id,
        event.run_id,
        storable(event.exception_type),
        state.status,
        state.assignee,
        state.waiver_requested_by,
        state.actions,
        state.updated_at,
        state.closed_at,
    )


def _action_row(
    item: Positioned, before: TriageState, after: TriageState, reason: str | None
) -> tuple[Any, ...]:
    event = item.event
    return (
        event.event_id,
        event.exception_id,
        item.partition,
        item.offset,
        event.event_type,  # type: ignore[attr-defined]
        ACTION_OF_EVENT[event.event_type],  # type: ignore[attr-defined]
        event.actor_id,
        storable(event.actor_role),
        storable(event.notes),
        getattr(event, "assignee", None),
        before.status,
        after.status,
        reason is None,
        storable(reason),
        storable(event.request_id),
        event.occurred_at,
    )
