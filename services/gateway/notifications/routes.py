"""`/notifications` (each user's own) and `/admin/teams/{team_id}/webhook` (SPEC §8)."""

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse

from services.gateway.deps import AdminUser, CurrentUser, PublisherDep, SessionDep, SettingsDep
from services.gateway.error_docs import documented
from services.gateway.notifications import repository as repo
from services.gateway.notifications import service
from services.gateway.notifications.schemas import (
    DeliveryView,
    NotificationPage,
    NotificationView,
    ReadAllAnswer,
    WebhookBody,
    WebhookView,
)
from services.gateway.notifications.webhooks import delivery_log
from services.gateway.patterns import TEAM_ID

router = APIRouter(tags=["notifications"])
TeamPath = Annotated[str, Path(max_length=100, pattern=TEAM_ID, description="The team's id.")]
NOT_FOLDED = {202: {"description": "Published; not yet folded into the read model."}}


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/notifications", response_model=NotificationPage)
async def notifications(
    user: CurrentUser,
    session: SessionDep,
    unread: Annotated[bool, Query(description="Only the unread ones.")] = False,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> NotificationPage:
    """Your notifications, newest first: SLA warnings and breaches, escalations, override
    outcomes, runs completed or failed."""
    return await service.page(session, user, unread, skip, limit)


@router.post(
    "/notifications/read-all",
    response_model=ReadAllAnswer,
    responses={**NOT_FOLDED, **documented(503)},
)
async def read_all(
    user: CurrentUser, session: SessionDep, publisher: PublisherDep, settings: SettingsDep
) -> JSONResponse:
    """Mark every notification you have read (all raised up to your newest one)."""
    through, folded = await service.mark_all_read(
        session, publisher, user, settings.review_wait_seconds, _now()
    )
    _rows, _total, unread = await repo.list_for(session, user.user_id, user.team_scope, True, 0, 1)
    answer = ReadAllAnswer(read_through=through, unread=unread)
    return JSONResponse(answer.model_dump(mode="json"), status_code=200 if folded else 202)


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationView,
    responses={**NOT_FOLDED, **documented(404, 503)},
)
async def read_one(
    notification_id: UUID,
    user: CurrentUser,
    session: SessionDep,
    publisher: PublisherDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Mark one of your notifications read."""
    answer, folded = await service.mark_read(
        session, publisher, user, notification_id, settings.review_wait_seconds, _now()
    )
    return JSONResponse(answer.model_dump(mode="json"), status_code=200 if folded else 202)


@router.get("/admin/teams/{team_id}/webhook", response_model=WebhookView, responses=documented(404))
async def get_webhook(team_id: TeamPath, _admin: AdminUser, session: SessionDep) -> WebhookView:
    """The team's webhook (its secret is never shown)."""
    return await service.get_webhook(session, team_id)


@router.put("/admin/teams/{team_id}/webhook", response_model=WebhookView, responses=documented(404))
async def put_webhook(
    team_id: TeamPath, body: WebhookBody, _admin: AdminUser, session: SessionDep
) -> WebhookView:
    """Set the team's webhook: every later notification of its runs is POSTed there, signed
    with the secret (`X-Loan-Engine-Signature: sha256=<hex HMAC-SHA256 of the body>`)."""
    return await service.set_webhook(session, team_id, str(body.url), body.secret, _now())


@router.delete("/admin/teams/{team_id}/webhook", status_code=204, responses=documented(404))
async def delete_webhook(team_id: TeamPath, _admin: AdminUser, session: SessionDep) -> Response:
    """Stop POSTing the team's notifications (the delivery log stays)."""
    await service.remove_webhook(session, team_id)
    return Response(status_code=204)


@router.get("/admin/teams/{team_id}/webhook/deliveries", response_model=list[DeliveryView])
async def deliveries(
    team_id: TeamPath,
    _admin: AdminUser,
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeliveryView]:
    """The team's webhook deliveries, newest first, each with every try (the delivery log)."""
    return [
        DeliveryView.model_validate(
            {
                **row._mapping,
                "next_attempt_at": row.next_attempt_at if row.state == "pending" else None,
                "tries": [dict(attempt._mapping) for attempt in tries],
            }
        )
        for row, tries in await delivery_log(session, team_id, skip, limit)
    ]
