"""`/auth`: log in, refresh, log out, who am I."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import OAuth2PasswordRequestForm

from services.gateway.deps import AccessClaims, CurrentUser, SessionDep, SettingsDep
from services.gateway.errors import NotFound
from services.gateway.identity import repository as repo
from services.gateway.identity import service
from services.gateway.identity.schemas import (
    LogoutRequest,
    RefreshRequest,
    TokenResponse,
    UserResponse,
)

router = APIRouter(prefix="/auth", tags=["auth"])


def _tokens(pair: service.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


@router.post("/login", response_model=TokenResponse)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> TokenResponse:
    """Exchange a username and password (OAuth2 password form) for access and refresh tokens."""
    return _tokens(await service.login(session, settings, form.username, form.password))


@router.post("/refresh", response_model=TokenResponse)
async def refresh(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep
) -> TokenResponse:
    """Exchange a refresh token (single use) for new tokens."""
    return _tokens(await service.refresh(session, settings, body.refresh_token))


@router.post("/logout", status_code=204, response_class=Response)
async def logout(
    claims: AccessClaims,
    session: SessionDep,
    settings: SettingsDep,
    body: LogoutRequest | None = None,
) -> Response:
    """Revoke the access token in use, and the refresh token when given."""
    await service.logout(session, settings, claims, body.refresh_token if body else None)
    return Response(status_code=204)


@router.get("/me", response_model=UserResponse)
async def me(user: CurrentUser, session: SessionDep) -> UserResponse:
    """The authenticated user."""
    stored = await repo.get_user_by_id(session, user.user_id)
    if stored is None:
        raise NotFound("User not found")
    return user_response(stored)


def user_response(user: repo.User) -> UserResponse:
    """A user without its password hash."""
    return UserResponse(
        id=user.id,
        username=user.username,
        email=user.email,
        role=user.role,
        team_id=user.team_id,
        is_active=user.is_active,
        created_at=user.created_at,
    )
