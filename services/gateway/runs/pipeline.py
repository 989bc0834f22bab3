"""`/pipeline/run`: request a run, optionally waiting for it to end."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from services.common.metrics import record_run
from services.gateway.deps import (
    CurrentUser,
    PublisherDep,
    SessionDep,
    SessionMakerDep,
    SettingsDep,
)
from services.gateway.error_docs import documented
from services.gateway.runs.schemas import RunRequest, RunResponse
from services.gateway.runs.service import request_run, wait_for_end
from services.gateway.runs.views import run_response

router = APIRouter(prefix="/pipeline", tags=["pipeline"])
MAX_WAIT_SECONDS = 300


@router.post(
    "/run",
    status_code=202,
    response_model=RunResponse,
    responses={
        200: {"model": RunResponse, "description": "The run ended within `wait`."},
        **documented(400, 403, 503),
    },
)
async def run_pipeline(
    body: RunRequest,
    user: CurrentUser,
    session: SessionDep,
    sessions: SessionMakerDep,
    publisher: PublisherDep,
    settings: SettingsDep,
    wait: Annotated[
        int | None,
        Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait for the run to end."),
    ] = None,
) -> JSONResponse:
    """Request a run over a folder of your inputs: 202 with the pending run, or 200 once ended."""
    state = await request_run(session, publisher, user, body)
    record_run("requested")
    await session.close()
    if wait:
        seconds = min(wait, settings.run_wait_max_seconds)
        ended = await wait_for_end(
            sessions, user, state.run_id, seconds, settings.run_wait_poll_seconds
        )
        if ended is not None:
            code = 200 if ended.ended else 202
            return JSONResponse(run_response(ended).model_dump(mode="json"), status_code=code)
    return JSONResponse(run_response(state).model_dump(mode="json"), status_code=202)
