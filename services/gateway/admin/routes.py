"""`/admin` (admins only): users, teams and projection rebuilds.

Other admin routers (diagnostics: health, config, lag, dead letters) join through
`create_app(admin_routers=...)`, mounted under `/api/admin` behind the same admin-only check.
"""

from uuid import UUID

from fastapi import APIRouter, Depends

from services.gateway.db import connect
from services.gateway.deps import AdminUser, PagingDep, SessionDep, SettingsDep, require_roles
from services.gateway.error_docs import documented
from services.gateway.errors import Conflict, NotFound
from services.gateway.identity import repository as repo
from services.gateway.identity import service
from services.gateway.identity.routes import user_response
from services.gateway.identity.schemas import (
    TeamCreate,
    TeamResponse,
    UserCreate,
    UserResponse,
    UserUpdate,
)
from services.gateway.projector.maintenance import reset
from services.gateway.tables import SCHEMA

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_roles("admin"))])


@router.get("/users", response_model=list[UserResponse])
async def list_users(session: SessionDep, paging: PagingDep) -> list[UserResponse]:
    """Every user, by username."""
    return [user_response(u) for u in await repo.list_users(session, paging.skip, paging.limit)]


@router.post("/users", status_code=201, response_model=UserResponse, responses=documented(400, 409))
async def create_user(body: UserCreate, session: SessionDep) -> UserResponse:
    """Create a user (a sales_team user needs a team)."""
    user = await service.create_user(
        session,
        username=body.username,
        email=body.email,
        role=body.role,
        password=body.password,
        team_id=body.team_id,
    )
    return user_response(user)


@router.get("/users/{user_id}", response_model=UserResponse)
async def get_user(user_id: UUID, session: SessionDep) -> UserResponse:
    """One user."""
    user = await repo.get_user_by_id(session, user_id)
    if user is None:
        raise NotFound("User not found")
    return user_response(user)


@router.patch("/users/{user_id}", response_model=UserResponse, responses=documented(400, 409))
async def update_user(
    user_id: UUID, body: UserUpdate, session: SessionDep, admin: AdminUser
) -> UserResponse:
    """Change a user's e-mail, role, team, activity or password."""
    user = await repo.get_user_by_id(session, user_id)
    if user is None:
        raise NotFound("User not found")
    if user.id == admin.user_id and (body.is_active is False or body.role not in (None, "admin")):
        raise Conflict("Admins cannot demote or deactivate themselves")
    updated = await service.update_user(
        session,
        user,
        email=body.email,
        role=body.role,
        team_id=body.team_id,
        is_active=body.is_active,
        password=body.password,
    )
    return user_response(updated)


@router.get("/teams", response_model=list[TeamResponse])
async def list_teams(session: SessionDep, paging: PagingDep) -> list[TeamResponse]:
    """Every sales team."""
    teams = await repo.list_teams(session, None, paging.skip, paging.limit)
    return [TeamResponse(id=t.id, name=t.name, created_at=t.created_at) for t in teams]


@router.post("/teams", status_code=201, response_model=TeamResponse, responses=documented(400, 409))
async def create_team(body: TeamCreate, session: SessionDep) -> TeamResponse:
    """Create a sales team."""
    team = await service.create_team(session, body.name, body.id)
    return TeamResponse(id=team.id, name=team.name, created_at=team.created_at)


@router.post("/projections/rebuild", status_code=202)
async def rebuild_projections(settings: SettingsDep) -> dict[str, object]:
    """Reset every read model; the running projector replays the log into them."""
    conn = await connect(settings)
    try:
        generation = await reset(conn)
    finally:
        await conn.close()
    return {"generation": generation, "status": "replaying"}


@router.get("/projections")
async def projection_status(settings: SettingsDep) -> dict[str, object]:
    """The projector generation, when the read models were last rebuilt, and positions held."""
    conn = await connect(settings)
    try:
        row = await conn.fetchrow(f"SELECT generation, rebuilt_at FROM {SCHEMA}.projector_state")
        positions = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.projector_positions")
    finally:
        await conn.close()
    return {
        "generation": row["generation"] if row else 0,
        "rebuilt_at": row["rebuilt_at"] if row else None,
        "partitions_positioned": positions,
    }
