"""Identity use cases: log in, refresh, log out, who is this token, and the operators' chores.

Functions take a session and commit what they change; the routes and the CLI stay thin.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.errors import BadRequest, Conflict, NotFound, Unauthorized, Unprocessable
from services.gateway.identity import repository as repo
from services.gateway.identity.passwords import hash_password_async, verify_password_async
from services.gateway.identity.principal import ROLES, Principal, Role
from services.gateway.identity.tokens import InvalidToken, TokenClaims, issue_token, verify_token
from services.gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access token, its refresh token and the access token's lifetime in seconds."""

    access_token: str
    refresh_token: str
    expires_in: int


def principal_of(user: repo.User) -> Principal:
    """The principal a stored user acts as."""
    return Principal(user.id, user.username, user.role, user.team_id)


def _pair(settings: GatewaySettings, user: repo.User) -> TokenPair:
    access, _ = issue_token(settings, user.id, "access", version=user.token_version)
    refresh, _ = issue_token(settings, user.id, "refresh", version=user.token_version)
    return TokenPair(access, refresh, settings.access_token_seconds)


async def login(
    session: AsyncSession, settings: GatewaySettings, username: str, password: str
) -> TokenPair:
    """Tokens for a user whose password matches; 401 otherwise (the same for unknown users)."""
    # No stored name holds a NUL character (PostgreSQL text cannot): such a name matches no one.
    user = None if "\x00" in username else await repo.get_user_by_username(session, username)
    matched = await verify_password_async(password, user.password_hash if user else None)
    if user is None or not matched or not user.is_active:
        logger.info("login refused", extra={"username": username})
        raise Unauthorized("Incorrect username or password")
    logger.info("login", extra={"username": username, "user_id": str(user.id)})
    return _pair(settings, user)


async def authenticate(
    session: AsyncSession, settings: GatewaySettings, access_token: str
) -> tuple[Principal, TokenClaims]:
    """The active user behind a valid, unrevoked access token; 401 otherwise."""
    claims = _decoded(settings, access_token, "access")
    user, revoked = await repo.get_user_and_revocation(session, claims.user_id, claims.jti)
    if revoked:
        raise Unauthorized("Token has been revoked")
    if user is None or not user.is_active:
        raise Unauthorized("User not found or inactive")
    _require_current(claims, user)
    return principal_of(user), claims


def _require_current(claims: TokenClaims, user: repo.User) -> None:
    """401 for a token issued before the user's last password reset, deactivation or role
    change."""
    if claims.version != user.token_version:
        raise Unauthorized("Token has been revoked")


def _decoded(settings: GatewaySettings, token: str, kind: str) -> TokenClaims:
    try:
        return verify_token(settings, token, kind)  # type: ignore[arg-type]
    except InvalidToken as error:
        raise Unauthorized("Invalid or expired token") from error


async def _verified(
    session: AsyncSession, settings: GatewaySettings, token: str, kind: str
) -> TokenClaims:
    claims = _decoded(settings, token, kind)
    if await repo.is_revoked(session, claims.jti):
        raise Unauthorized("Token has been revoked")
    return claims


async def refresh(
    session: AsyncSession, settings: GatewaySettings, refresh_token: str
) -> TokenPair:
    """New tokens for a valid refresh token, which is revoked (refresh tokens are single-use).

    Revoking is the check: of several requests spending one refresh token at once, only the one
    whose revocation commits gets new tokens.
    """
    claims = await _verified(session, settings, refresh_token, "refresh")
    user = await repo.get_user_by_id(session, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("User not found or inactive")
    _require_current(claims, user)
    if not await repo.revoke(session, claims.jti, claims.expires_at):
        raise Unauthorized("Token has been revoked")
    await session.commit()
    return _pair(settings, user)


async def logout(
    session: AsyncSession,
    settings: GatewaySettings,
    access: TokenClaims,
    refresh_token: str | None = None,
) -> None:
    """Revoke the access token in use and, when given, its refresh token."""
    await repo.revoke(session, access.jti, access.expires_at)
    if refresh_token:
        try:
            claims = verify_token(settings, refresh_token, "refresh")
        except InvalidToken:
            claims = None
        if claims is not None and claims.user_id == access.user_id:
            await repo.revoke(session, claims.jti, claims.expires_at)
    await repo.purge_revocations(session, datetime.now(UTC))
    await session.commit()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Unprocessable(f"Password must have at least {MIN_PASSWORD_LENGTH} characters")


async def _check_role_team(session: AsyncSession, role: str, team_id: str | None) -> None:
    if role not in ROLES:
        raise BadRequest(f"Role must be one of {', '.join(ROLES)}")
    if (role == "sales_team") != (team_id is not None):
        raise BadRequest("A sales_team user needs a team; other roles have none")
    if team_id is not None and await repo.get_team(session, team_id) is None:
        raise BadRequest(f"Unknown team {team_id!r}")


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    email: str,
    role: Role,
    password: str,
    team_id: str | None = None,
) -> repo.User:
    """Create a user; 409 if the username is taken, 422 for a bad role, team or password."""
    _check_password(password)
    await _check_role_team(session, role, team_id)
    values = {
        "id": uuid4(),
        "username": username,
        "email": email,
        "role": role,
        "team_id": team_id,
        "password_hash": await hash_password_async(password),
    }
    if not await repo.insert_user(session, values):
        raise Conflict(f"User {username!r} already exists")
    await session.commit()
    logger.info("user created", extra={"username": username, "role": role})
    user = await repo.get_user_by_username(session, username)
    assert user is not None
    return user


async def update_user(
    session: AsyncSession,
    user: repo.User,
    *,
    email: str | None = None,
    role: Role | None = None,
    team_id: str | None = None,
    is_active: bool | None = None,
    password: str | None = None,
) -> repo.User:
    """Change a user's e-mail, role/team, activity or password; a new password, a deactivation or
    a new role or team revokes every token issued to the user before it."""
    new_role = role or user.role
    new_team = team_id if team_id is not None else user.team_id
    if new_role != "sales_team":
        new_team = None
    await _check_role_team(session, new_role, new_team)
    values: dict[str, object] = {"role": new_role, "team_id": new_team}
    if email is not None:
        values["email"] = email
    if is_active is not None:
        values["is_active"] = is_active
    if password is not None:
        _check_password(password)
        values["password_hash"] = await hash_password_async(password)
    await repo.update_user(session, user.id, values)
    deactivated = is_active is False and user.is_active
    if password is not None or deactivated or (new_role, new_team) != (user.role, user.team_id):
        await repo.invalidate_tokens(session, user.id)
    await session.commit()
    updated = await repo.get_user_by_id(session, user.id)
    assert updated is not None
    return updated


async def reset_password(session: AsyncSession, username: str, password: str) -> None:
    """Give a user a new password; 404 if there is no such user."""
    user = await repo.get_user_by_username(session, username)
    if user is None:
        raise NotFound(f"No user {username!r}")
    await update_user(session, user, password=password)


def team_slug(name: str) -> str:
    """A team id from its name: lower-case, runs of other characters as `-`."""
    return _SLUG.sub("-", name.strip().lower()).strip("-")


async def create_team(session: AsyncSession, name: str, team_id: str | None = None) -> repo.Team:
    """Create a sales team (its id defaults to the slug of its name); 409 if it exists."""
    clean = name.strip()
    identifier = team_slug(team_id or clean)
    if not clean or not identifier:
        raise BadRequest("A team needs a name with letters or digits")
    if not await repo.insert_team(session, identifier, clean):
        raise Conflict(f"Team {clean!r} already exists")
    await session.commit()
    logger.info("team created", extra={"team_id": identifier})
    team = await repo.get_team(session, identifier)
    assert team is not None
    return team


async def bootstrap_admin(session: AsyncSession, settings: GatewaySettings) -> bool:
    """Create the first admin from GATEWAY_ADMIN_* when no user exists yet; whether it did."""
    if not settings.admin_username or settings.admin_password is None:
        return False
    if await repo.count_users(session) > 0:
        return False
    try:
        await create_user(
            session,
            username=settings.admin_username,
            email=settings.admin_email,
            role="admin",
            password=settings.admin_password.get_secret_value(),
        )
    except Conflict:
        # Another gateway replica created it first.
        await session.rollback()
        return False
    return True
