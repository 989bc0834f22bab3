"""Exception actions: check them against the lifecycle, publish on triage.v1, wait for the fold.

The API decides with the state the projector has folded so far; the projector folds again with
the same rules (`domain.evolve`), so of two actions that raced only the first changes anything and
the second answers 409. An action answers once its event is folded (read your own writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.topics import TRIAGE
from contracts.triage import TriageEvent
from services.gateway import acting
from services.gateway.deps import Publisher
from services.gateway.errors import BadRequest, Conflict, Forbidden, GatewayError, NotFound
from services.gateway.facts.repository import ExceptionFilters
from services.gateway.identity import repository as identity
from services.gateway.identity.principal import Principal
from services.gateway.triage import repository as repo
from services.gateway.triage.domain import (
    Action,
    Actor,
    Command,
    ExceptionRef,
    InvalidTransition,
    NotPermitted,
    TriageError,
    TriageState,
    decide,
)
from services.gateway.triage.schemas import BULK_MAX, ActionRequest, BulkResponse, Skipped


def state_of(row: Any) -> TriageState:
    """The folded state of an exception row (with its triage columns)."""
    return TriageState(
        status=row.status,
        assignee=row.assignee,
        waiver_requested_by=row.waiver_requested_by,
        closed_at=row.closed_at,
    )


def ref_of(row: Any) -> ExceptionRef:
    """What an action needs to know about the exception."""
    return ExceptionRef(row.exception_id, row.loan_id, row.run_id, row.exception_type, row.severity)


def http_error(error: TriageError) -> GatewayError:
    """The HTTP answer of a lifecycle rule."""
    if isinstance(error, InvalidTransition):
        return Conflict(str(error))
    if isinstance(error, NotPermitted):
        return Forbidden(str(error))
    return BadRequest(str(error))


async def _check_assignee(session: AsyncSession, action: Action, body: ActionRequest) -> None:
    if action != "assign" or body.assignee is None:
        return
    user = await identity.get_user_by_id(session, body.assignee)
    if user is None or not user.is_active:
        raise BadRequest("The assignee is not an active user")


def _command(
    action: Action, user: Principal, body: ActionRequest, request_id: str | None, at: datetime
) -> Command:
    return Command(
        action,
        Actor(user.user_id, user.role),
        at,
        uuid4(),
        notes=body.notes,
        assignee=body.assignee,
        request_id=request_id,
    )


async def act(
    session: AsyncSession,
    publisher: Publisher,
    user: Principal,
    exception_id: UUID,
    action: Action,
    body: ActionRequest,
    request_id: str | None,
    wait_seconds: float,
) -> bool:
    """Take one action; True once folded, False if the projector has not caught up yet."""
    row = await repo.get_exception(session, exception_id, user.team_scope)
    if row is None:
        raise NotFound("Exception not found")
    await _check_assignee(session, action, body)
    try:
        event = decide(ref_of(row), state_of(row), _command(action, user, body, request_id, _now()))
    except TriageError as error:
        raise http_error(error) from error
    await publisher.publish(TRIAGE, str(exception_id), event)
    folded = await wait_folded(session, [event.event_id], wait_seconds)
    outcome = folded.get(event.event_id)
    if outcome is not None and not outcome.applied:
        raise Conflict(outcome.reason)
    return outcome is not None


async def bulk(
    session: AsyncSession,
    publisher: Publisher,
    user: Principal,
    action: Action,
    body: Any,
    filters: ExceptionFilters | None,
    request_id: str | None,
    wait_seconds: float,
) -> BulkResponse:
    """One action over many exceptions: one event each; the others are listed as skipped."""
    skipped: list[Skipped] = []
    if filters is not None:
        rows = await repo.find_exceptions(session, filters, user.team_scope, BULK_MAX + 1)
        if len(rows) > BULK_MAX:
            raise BadRequest(f"The filter matches more than {BULK_MAX} exceptions")
        requested = len(rows)
    else:
        ids = list(dict.fromkeys(body.exception_ids))
        requested = len(ids)
        rows = await repo.get_exceptions(session, ids, user.team_scope)
        found = {row.exception_id for row in rows}
        skipped.extend(
            Skipped(exception_id=i, status=None, error="Exception not found")
            for i in ids
            if i not in found
        )
    await _check_assignee(session, action, body)
    events: list[TriageEvent] = []
    at = _now()
    for row in rows:
        try:
            events.append(
                decide(ref_of(row), state_of(row), _command(action, user, body, request_id, at))
            )
        except TriageError as error:
            skipped.append(
                Skipped(exception_id=row.exception_id, status=row.status, error=str(error))
            )
    await publish_all(publisher, events)
    folded = await wait_folded(session, [event.event_id for event in events], wait_seconds)
    statuses = {row.exception_id: row.status for row in rows}
    applied = 0
    for event in events:
        outcome = folded.get(event.event_id)
        if outcome is not None and not outcome.applied:
            skipped.append(
                Skipped(
                    exception_id=event.exception_id,
                    status=statuses[event.exception_id],
                    error=outcome.reason,
                )
            )
        elif outcome is not None:
            applied += 1
    pending = sum(1 for event in events if event.event_id not in folded)
    return BulkResponse(
        action=action, requested=requested, applied=applied, pending=pending, skipped=skipped
    )


async def publish_all(publisher: Publisher, events: Sequence[TriageEvent]) -> None:
    """Publish events keyed by exception id."""
    await acting.publish_all(publisher, TRIAGE, events, lambda event: str(event.exception_id))


async def wait_folded(
    session: AsyncSession, event_ids: Sequence[UUID], wait_seconds: float
) -> dict[UUID, Any]:
    """The fold outcomes of the events, waiting up to `wait_seconds` for all of them."""
    return await acting.wait_folded(session, event_ids, wait_seconds, repo.outcomes)


def _now() -> datetime:
    return datetime.now(UTC)
