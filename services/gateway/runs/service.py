"""Run commands: request, retry and reprocess publish to `runs.v1`; `wait` follows the projection.

The gateway never writes a run itself: the projector builds every run from the log, so the API
answers with the run as the event it just published makes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.ids import event_id
from contracts.loans import RunParams
from contracts.runs import RunReprocessRequested, RunRequested, RunRetryRequested
from contracts.topics import RUNS
from services.gateway.deps import Publisher
from services.gateway.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from services.gateway.files.inputs import folder_for_run
from services.gateway.identity import repository as identity
from services.gateway.identity.principal import Principal
from services.gateway.reprocess.service import reprocess_edits
from services.gateway.runs.domain import RunState, apply, state_from_mapping
from services.gateway.runs.repository import get_run
from services.gateway.runs.schemas import ReprocessRequest, RunRequest

logger = logging.getLogger(__name__)
PRODUCER = "gateway"


async def visible_run(session: AsyncSession, user: Principal, run_id: UUID) -> RunState:
    """The run if the user may see it; 404 if it does not exist or is another team's."""
    row = await get_run(session, run_id, user.team_scope)
    if row is None:
        raise NotFound("Run not found")
    return state_from_mapping(row._mapping)


async def _publish(publisher: Publisher, run_id: UUID, event: object) -> None:
    try:
        await publisher.publish(RUNS, str(run_id), event)  # type: ignore[arg-type]
    except Exception as error:
        logger.error("publish failed", extra={"run_id": str(run_id), "error": type(error).__name__})
        raise Unavailable("The event log is not reachable; try again") from error


async def request_run(
    session: AsyncSession, publisher: Publisher, user: Principal, body: RunRequest
) -> RunState:
    """Publish a run request over a folder of the user's inputs; the run starts `pending`."""
    team = body.sales_team_id
    if user.team_scope is not None:
        if team is not None and team != user.team_scope:
            raise Forbidden("A sales-team user runs only for its own team")
        team = user.team_scope
    elif team is not None and await identity.get_team(session, team) is None:
        raise BadRequest(f"Unknown sales team {team!r}")
    run_id = uuid4()
    now = datetime.now(UTC)
    event = RunRequested(
        event_id=event_id("run.requested", run_id),
        run_id=run_id,
        occurred_at=now,
        producer=PRODUCER,
        params=RunParams(irr_target=body.irr_target, pdate=body.pdate, sales_team_id=team),
        folder=folder_for_run(user, body.folder),
        requested_by=user.username,
        created_at=now,
    )
    await _publish(publisher, run_id, event)
    logger.info("run requested", extra={"run_id": str(run_id), "folder": event.folder})
    return apply(event, RunState(run_id=run_id))


async def retry_run(
    session: AsyncSession, publisher: Publisher, user: Principal, run_id: UUID
) -> RunState:
    """Ask a failed run to resume from its failed phase; 409 unless it failed."""
    state = await visible_run(session, user, run_id)
    if state.status != "failed":
        raise Conflict(f"Only a failed run can be retried (this one is {state.status})")
    attempt = state.attempt + 1
    event = RunRetryRequested(
        event_id=event_id("run.retry_requested", run_id, attempt),
        run_id=run_id,
        occurred_at=datetime.now(UTC),
        producer=PRODUCER,
        attempt=attempt,
        phase=state.failed_phase or state.last_phase or "ingest",
        requested_by=user.username,
    )
    await _publish(publisher, run_id, event)
    logger.info("run retry requested", extra={"run_id": str(run_id), "attempt": attempt})
    return apply(event, state)


async def reprocess_run(
    session: AsyncSession,
    publisher: Publisher,
    user: Principal,
    run_id: UUID,
    body: ReprocessRequest,
) -> RunState:
    """A new run over a finished run's archived inputs, with new parameters when given."""
    parent = await visible_run(session, user, run_id)
    if not parent.ended:
        raise Conflict("Only a completed or failed run can be reprocessed")
    pdate = body.pdate or parent.pdate
    if pdate is None:
        raise BadRequest("The run has no pdate; give one")
    edits = await reprocess_edits(session, parent, body)
    new_id = uuid4()
    now = datetime.now(UTC)
    event = RunReprocessRequested(
        event_id=event_id("run.reprocess_requested", new_id),
        run_id=new_id,
        occurred_at=now,
        producer=PRODUCER,
        params=RunParams(
            irr_target=body.irr_target
            or parent.irr_target
            or RunParams.model_fields["irr_target"].default,
            pdate=pdate,
            sales_team_id=parent.sales_team_id,
            rule_set_version=body.rule_set_version,
        ),
        parent_run_id=parent.run_id,
        requested_by=user.username,
        created_at=now,
        apply_corrections=body.apply_corrections,
        edits=edits,
    )
    await _publish(publisher, new_id, event)
    logger.info("run reprocess requested", extra={"run_id": str(new_id), "parent": str(run_id)})
    return apply(event, RunState(run_id=new_id))


async def wait_for_end(
    sessions: async_sessionmaker[AsyncSession],
    user: Principal,
    run_id: UUID,
    seconds: float,
    poll: float,
) -> RunState | None:
    """The projected run once it has ended, or its latest state (None if unseen) at the timeout."""
    deadline = time.monotonic() + seconds
    latest: RunState | None = None
    while True:
        async with sessions() as session:
            row = await get_run(session, run_id, user.team_scope)
        if row is not None:
            latest = state_from_mapping(row._mapping)
            if latest.ended:
                return latest
        if time.monotonic() >= deadline:
            return latest
        await asyncio.sleep(min(poll, max(deadline - time.monotonic(), 0)))
