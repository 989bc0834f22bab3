"""Fold reviews.v1 into `review_cases` (state) and `review_actions` (every event, applied or
rejected, in log order).

Idempotent: an event already recorded (a re-delivery, a replay over a partial chunk) is skipped,
and a second `review.case_opened` of the same case (the review job ran twice) is recorded as
rejected. The fold re-checks every rule of the case (`domain.evolve`), so of two actions on one
case that raced through the API only the first changes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts.codec import decode_union
from contracts.ids import event_id as make_event_id
from contracts.reviews import (
    REVIEW_EVENT,
    AutoDecisionsRecorded,
    ReviewCaseOpened,
    ReviewConditionFulfilled,
    ReviewDecisionRecorded,
    ReviewEvent,
    ReviewOverrideApproved,
    ReviewOverrideRejected,
)
from services.gateway.patterns import storable
from services.gateway.projector.copying import copy_or_ignore
from services.gateway.review.domain import (
    ACTION_OF_EVENT,
    CaseState,
    ReviewError,
    evolve,
)
from services.gateway.tables import SCHEMA

STATE_COLUMNS = (
    "status",
    "assignee",
    "releases",
    "actions",
    "assigned_at",
    "started_at",
    "updated_at",
    "decision_id",
    "decided_by",
    "decided_at",
    "conditions",
    "fulfilled",
    "sla_warned_at",
    "sla_breached_at",
    "escalated_at",
)
DECISION_COLUMNS = (
    "decision_id",
    "case_id",
    "loan_id",
    "run_id",
    "seq",
    "decision_type",
    "outcome",
    "status",
    "terms",
    "conditions",
    "fulfilled",
    "reasoning",
    "justification",
    "score",
    "model_leaning",
    "is_override",
    "review_time_seconds",
    "decided_by",
    "decided_role",
    "decided_at",
)
OPENED_COLUMNS = (
    "case_id",
    "loan_id",
    "run_id",
    "seq",
    "seller_loan_number",
    "model_version",
    "score",
    "routing_reason",
    "loan_amount",
    "scored_at",
    "opened_priority_score",
    "opened_priority",
    "opened_at",
    "sla_deadline",
)
ACTION_COLUMNS = (
    "event_id",
    "case_id",
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
class PositionedReview:
    """A review event with where it sits in the log (its history order)."""

    partition: int
    offset: int
    event: ReviewEvent | AutoDecisionsRecorded


def decode_review(partition: int, offset: int, value: bytes) -> PositionedReview:
    """One reviews.v1 record, validated."""
    return PositionedReview(partition, offset, decode_union(value, REVIEW_EVENT))


def _state(row: Any) -> CaseState:
    values = {name: row[name] for name in STATE_COLUMNS}
    return CaseState(**{**values, "fulfilled": tuple(values["fulfilled"])})


async def _load(
    conn: asyncpg.Connection, items: list[Any]
) -> tuple[set[UUID], dict[UUID, CaseState]]:
    seen = {
        row["event_id"]
        for row in await conn.fetch(
            f"SELECT event_id FROM {SCHEMA}.review_actions WHERE event_id = ANY($1::uuid[])",
            [item.event.event_id for item in items],
        )
    }
    ids = list(dict.fromkeys(item.event.case_id for item in items))
    states = {
        row["case_id"]: _state(row)
        for row in await conn.fetch(
            f"SELECT * FROM {SCHEMA}.review_cases WHERE case_id = ANY($1::uuid[])", ids
        )
    }
    return seen, states


async def write_reviews(conn: asyncpg.Connection, items: list[PositionedReview]) -> None:
    """Apply a chunk's review events in log order (inside the chunk's transaction)."""
    autos = [item.event for item in items if isinstance(item.event, AutoDecisionsRecorded)]
    await write_auto_decisions(conn, autos)
    items = [item for item in items if not isinstance(item.event, AutoDecisionsRecorded)]
    if not items:
        return
    seen, states = await _load(conn, items)
    existing = set(states)
    opened: dict[UUID, ReviewCaseOpened] = {}
    changed: set[UUID] = set()
    decided: list[ReviewDecisionRecorded] = []
    reviewed: list[ReviewOverrideApproved | ReviewOverrideRejected] = []
    fulfilled: dict[UUID, UUID] = {}
    actions: list[tuple[Any, ...]] = []
    for item in items:
        event = item.event
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        before = states.get(event.case_id)
        try:
            after, reason = evolve(before, event), None
        except ReviewError as error:
            after, reason = before, str(error)
        if reason is None and after is not None:
            states[event.case_id] = after
            if isinstance(event, ReviewCaseOpened):
                opened[event.case_id] = event
            else:
                changed.add(event.case_id)
            if isinstance(event, ReviewDecisionRecorded):
                decided.append(event)
            elif isinstance(event, ReviewOverrideApproved | ReviewOverrideRejected):
                reviewed.append(event)
            elif isinstance(event, ReviewConditionFulfilled):
                fulfilled[event.decision_id] = event.case_id
        actions.append(_action_row(item, before, after, reason))
    await copy_or_ignore(
        conn,
        "review_cases",
        (*OPENED_COLUMNS, *STATE_COLUMNS),
        ("case_id",),
        [(*_opened_row(event), *_state_row(states[cid])) for cid, event in opened.items()],
    )
    updates = [cid for cid in changed if cid in existing or cid in opened]
    if updates:
        sets = ", ".join(f'"{name}" = ${i}' for i, name in enumerate(STATE_COLUMNS, 2))
        await conn.executemany(
            f"UPDATE {SCHEMA}.review_cases SET {sets} WHERE case_id = $1",
            [(cid, *_state_row(states[cid])) for cid in updates],
        )
    await copy_or_ignore(conn, "review_actions", ACTION_COLUMNS, ("event_id",), actions)
    await _write_decisions(conn, decided, reviewed)
    await conn.executemany(
        f"UPDATE {SCHEMA}.review_decisions SET fulfilled = $2 WHERE decision_id = $1",
        [(decision, list(states[case].fulfilled)) for decision, case in fulfilled.items()],
    )


async def _write_decisions(
    conn: asyncpg.Connection,
    decided: list[ReviewDecisionRecorded],
    reviewed: list[ReviewOverrideApproved | ReviewOverrideRejected],
) -> None:
    await _insert_decisions(conn, [_decision_row(event) for event in decided])
    await conn.executemany(
        f"UPDATE {SCHEMA}.review_decisions SET status = $2, override_by = $3, "
        "override_at = $4, override_notes = $5 WHERE decision_id = $1",
        [
            (
                event.decision_id,
                "final" if isinstance(event, ReviewOverrideApproved) else "override_rejected",
                event.actor_id,
                event.occurred_at,
                storable(event.notes),
            )
            for event in reviewed
        ],
    )


async def _insert_decisions(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    slots = ", ".join(
        f"${i}::jsonb" if name == "conditions" else f"${i}"
        for i, name in enumerate(DECISION_COLUMNS, 1)
    )
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.review_decisions ({_names(DECISION_COLUMNS)}) VALUES ({slots}) "
        "ON CONFLICT (decision_id) DO NOTHING",
        rows,
    )


def _decision_row(event: ReviewDecisionRecorded) -> tuple[Any, ...]:
    conditions = [
        {name: storable(value) if isinstance(value, str) else value for name, value in row.items()}
        for row in (condition.model_dump(mode="json") for condition in event.conditions)
    ]
    return (
        event.decision_id,
        event.case_id,
        event.loan_id,
        event.run_id,
        event.seq,
        event.decision_type,
        event.outcome,
        "override_pending" if event.is_override else "final",
        storable(event.terms),
        orjson.dumps(conditions, option=orjson.OPT_SORT_KEYS).decode(),
        [],
        storable(event.reasoning),
        storable(event.justification),
        event.score,
        event.model_leaning,
        event.is_override,
        event.review_time_seconds,
        event.actor_id,
        event.actor_role,
        event.occurred_at,
    )


def auto_decision_id(run_id: UUID, loan_id: UUID) -> UUID:
    """The id of a loan's auto decision: one per loan, whatever the replays."""
    return make_event_id("review.auto_decided", run_id, loan_id)


async def write_auto_decisions(
    conn: asyncpg.Connection, events: list[AutoDecisionsRecorded]
) -> None:
    """Record every auto decision once (a batch recorded twice changes nothing)."""
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.auto_decided_batches (run_id, batch_seq, decisions) "
        "VALUES ($1, $2, $3) ON CONFLICT (run_id, batch_seq) DO NOTHING",
        [(event.run_id, event.batch_seq, len(event.decisions)) for event in events],
    )
    await copy_or_ignore(
        conn,
        "review_decisions",
        DECISION_COLUMNS,
        ("decision_id",),
        [
            (
                auto_decision_id(event.run_id, decision.loan_id),
                None,
                decision.loan_id,
                event.run_id,
                decision.seq,
                decision.decision_type,
                "approve" if decision.decision_type == "auto_approve" else "decline",
                "final",
                None,
                "[]",
                [],
                None,
                None,
                decision.score,
                None,
                False,
                None,
                None,
                "system",
                event.occurred_at,
            )
            for event in events
            for decision in event.decisions
        ],
    )


def _names(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{name}"' for name in columns)


def _opened_row(event: ReviewCaseOpened) -> tuple[Any, ...]:
    return (
        event.case_id,
        event.loan_id,
        event.run_id,
        event.seq,
        event.seller_loan_number,
        event.model_version,
        event.score,
        event.routing_reason,
        event.loan_amount,
        event.scored_at,
        event.priority_score,
        event.priority,
        event.occurred_at,
        event.sla_deadline,
    )


def _state_row(state: CaseState) -> tuple[Any, ...]:
    return tuple(getattr(state, name) for name in STATE_COLUMNS)


def _action_row(
    item: PositionedReview, before: CaseState | None, after: CaseState | None, reason: str | None
) -> tuple[Any, ...]:
    event = item.event
    assert isinstance(event, ReviewEvent)
    event_type = str(event.event_type)  # type: ignore[attr-defined]
    return (
        event.event_id,
        event.case_id,
        item.partition,
        item.offset,
        event_type,
        ACTION_OF_EVENT[event_type],
        event.actor_id,
        event.actor_role,
        storable(event.notes),
        getattr(event, "assignee", None),
        before.status if before else None,
        after.status if after else None,
        reason is None,
        reason,
        event.request_id,
        event.occurred_at,
    )
