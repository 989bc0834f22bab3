"""Users, teams and revoked tokens in PostgreSQL; SQL lives here, commits do not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.identity.principal import Role
from services.gateway.tables import revoked_tokens, teams, users


@dataclass(frozen=True, slots=True)
class User:
    """A stored user (the hash stays inside the identity package)."""

    id: UUID
    username: str
    email: str
    role: Role
    team_id: str | None
    is_active: bool
    created_at: datetime
    password_hash: str
    token_version: int = 0


@dataclass(frozen=True, slots=True)
class Team:
    """A sales team."""

    id: str
    name: str
    created_at: datetime


def _user(row: Any) -> User:
    return User(
        row.id,
        row.username,
        row.email,
        row.role,
        row.team_id,
        row.is_active,
        row.created_at,
        row.password_hash,
        row.token_version,
    )


async def get_user_by_username(session: AsyncSession, username: str) -> User | None:
    """The user named `username`, if any."""
    row = (await session.execute(select(users).where(users.c.username == username))).first()
    return _user(row) if row else None


async def get_user_by_id(session: AsyncSession, user_id: UUID) -> User | None:
    """The user with id `user_id`, if any."""
    row = (await session.execute(select(users).where(users.c.id == user_id))).first()
    return _user(row) if row else None


async def get_user_and_revocation(
    session: AsyncSession, user_id: UUID, jti: str
) -> tuple[User | None, bool]:
    """The user with id `user_id` (if any) and whether the token `jti` was revoked.

    One round trip: every authenticated request asks both, and a query each was a third of the
    API's database waits under load."""
    revoked = exists().where(revoked_tokens.c.jti == jti).label("token_revoked")
    one = select(literal(1).label("one")).subquery()
    query = select(revoked, users).select_from(one.outerjoin(users, users.c.id == user_id))
    row = (await session.execute(query)).one()
    return (_user(row) if row.id is not None else None), bool(row.token_revoked)


async def list_users(session: AsyncSession, skip: int, limit: int) -> list[User]:
    """Users by username."""
    query = select(users).order_by(users.c.username).offset(skip).limit(limit)
    return [_user(row) for row in await session.execute(query)]


async def count_users(session: AsyncSession) -> int:
    """How many users exist."""
    return int((await session.execute(select(func.count()).select_from(users))).scalar_one())


async def insert_user(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert a user unless the username is taken; whether it was inserted."""
    query = pg_insert(users).values(**values).on_conflict_do_nothing(index_elements=["username"])
    result = await session.execute(query.returning(users.c.id))
    return result.first() is not None


async def update_user(session: AsyncSession, user_id: UUID, values: dict[str, Any]) -> None:
    """Change some of a user's columns."""
    await session.execute(
        update(users).where(users.c.id == user_id).values(**values, updated_at=func.now())
    )


async def invalidate_tokens(session: AsyncSession, user_id: UUID) -> None:
    """Bump the user's token version: every token issued before now is refused."""
    await session.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(token_version=users.c.token_version + 1, updated_at=func.now())
    )


async def get_team(session: AsyncSession, team_id: str) -> Team | None:
    """The team with id `team_id`, if any."""
    row = (await session.execute(select(teams).where(teams.c.id == team_id))).first()
    return Team(row.id, row.name, row.created_at) if row else None


async def list_teams(
    session: AsyncSession, team_scope: str | None, skip: int, limit: int
) -> list[Team]:
    """Teams by name; only `team_scope` when given."""
    query = select(teams).order_by(teams.c.name).offset(skip).limit(limit)
    if team_scope is not None:
        query = query.where(teams.c.id == team_scope)
    return [Team(row.id, row.name, row.created_at) for row in await session.execute(query)]


async def insert_team(session: AsyncSession, team_id: str, name: str) -> bool:
    """Insert a team unless its id or name is taken; whether it was inserted."""
    query = pg_insert(teams).values(id=team_id, name=name).on_conflict_do_nothing()
    result = await session.execute(query.returning(teams.c.id))
    return result.first() is not None


async def is_revoked(session: AsyncSession, jti: str) -> bool:
    """Whether the token with this `jti` was revoked."""
    query = select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti)
    return (await session.execute(query)).first() is not None


async def revoke(session: AsyncSession, jti: str, expires_at: datetime) -> bool:
    """Deny the token with this `jti` until it would have expired anyway; whether this call did.

    Two transactions revoking one token at once: the second waits on the first's row and, once
    that commits, inserts nothing, so exactly one of them learns it revoked the token.
    """
    query = pg_insert(revoked_tokens).values(jti=jti, expires_at=expires_at)
    inserted = await session.execute(query.on_conflict_do_nothing().returning(revoked_tokens.c.jti))
    return inserted.first() is not None


async def purge_revocations(session: AsyncSession, now: datetime) -> None:
    """Forget revocations of tokens that have expired (they are refused for expiry anyway)."""
    await session.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at < now))
