"""`/sales-teams` and `/config`."""

from fastapi import APIRouter

from services.gateway.deps import CurrentUser, PagingDep, SessionDep, SettingsDep
from services.gateway.identity import repository as repo
from services.gateway.identity.schemas import TeamResponse
from services.gateway.meta.schemas import ConfigResponse

router = APIRouter(tags=["meta"])


@router.get("/sales-teams", response_model=list[TeamResponse])
async def list_sales_teams(
    user: CurrentUser, session: SessionDep, paging: PagingDep
) -> list[TeamResponse]:
    """Sales teams (a sales-team user sees only its own)."""
    teams = await repo.list_teams(session, user.team_scope, paging.skip, paging.limit)
    return [TeamResponse(id=team.id, name=team.name, created_at=team.created_at) for team in teams]


@router.get("/config", response_model=ConfigResponse)
async def get_config(_: CurrentUser, settings: SettingsDep) -> ConfigResponse:
    """Where this deployment stores its files."""
    return ConfigResponse(
        storage_type=settings.storage_type,
        s3_bucket=settings.s3_bucket if settings.storage_type == "s3" else None,
        environment=settings.environment,
    )
