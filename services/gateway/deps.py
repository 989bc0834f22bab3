"""FastAPI dependencies as `Annotated` aliases: settings, session, storage, publisher, the user.

Every dependency is `async def`: FastAPI runs a plain `def` one in its thread pool, a hand-off
per dependency per request that cost more CPU than the work (measured under 50 clients).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.topics import Topic
from services.common.storage import Storage
from services.gateway.errors import Forbidden, Unauthorized
from services.gateway.identity.principal import Principal, Role
from services.gateway.identity.service import authenticate
from services.gateway.identity.tokens import TokenClaims
from services.gateway.paging import BIGINT
from services.gateway.settings import GatewaySettings


class Publisher(Protocol):
    """What the API needs to publish: `services.common.kafka.KafkaPublisher` provides it."""

    async def publish(
        self, topic: Topic, key: str, event: BaseModel, headers: dict[str, str] | None = None
    ) -> None: ...


async def get_settings(request: Request) -> GatewaySettings:
    """The app's settings."""
    return request.app.state.settings


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """The app's session factory (for work that outlives the request, e.g. streamed exports)."""
    return request.app.state.sessionmaker


READ_METHODS = frozenset({"GET", "HEAD"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One database session per request; whoever changes something commits.

    A read (GET, HEAD) gets an autocommit session: no BEGIN before its first query and no
    ROLLBACK after its last, two of a lookup's five round trips. Under READ COMMITTED every
    statement takes its own snapshot inside a transaction too, so the answers are the same."""
    state = request.app.state
    maker = state.read_sessionmaker if request.method in READ_METHODS else state.sessionmaker
    async with maker() as session:
        yield session


async def get_storage(request: Request) -> Storage:
    """The app's object storage."""
    return request.app.state.storage


async def get_publisher(request: Request) -> Publisher:
    """The app's Kafka publisher."""
    return request.app.state.publisher


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SessionMakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
StorageDep = Annotated[Storage, Depends(get_storage)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]

bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/login", auto_error=False)


async def get_authentication(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(bearer)],
) -> tuple[Principal, TokenClaims]:
    """The principal and claims of the request's bearer token; 401 without a valid one.

    The principal stays in the request state: the audit trail names it as the actor."""
    if not token:
        raise Unauthorized()
    principal, claims = await authenticate(session, settings, token)
    request.state.principal = principal
    return principal, claims


Authentication = Annotated[tuple[Principal, TokenClaims], Depends(get_authentication)]


async def get_current_user(authentication: Authentication) -> Principal:
    """The authenticated user."""
    return authentication[0]


async def get_access_claims(authentication: Authentication) -> TokenClaims:
    """The claims of the access token in use."""
    return authentication[1]


CurrentUser = Annotated[Principal, Depends(get_current_user)]
AccessClaims = Annotated[TokenClaims, Depends(get_access_claims)]


def require_roles(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting only users with one of `roles` (403 for the others)."""

    async def dependency(user: CurrentUser) -> Principal:
        if user.role not in roles:
            raise Forbidden(f"Requires role {' or '.join(roles)}")
        return user

    dependency.required_roles = roles  # type: ignore[attr-defined]  # read by error_docs
    return dependency


AdminUser = Annotated[Principal, Depends(require_roles("admin"))]
StaffUser = Annotated[Principal, Depends(require_roles("admin", "analyst", "senior_analyst"))]


@dataclass(frozen=True, slots=True)
class Paging:
    """`skip` (≥ 0), `limit` (1–1000) and the keyset cursor `after`."""

    skip: int
    limit: int
    after: str | None


async def get_paging(
    skip: Annotated[int, Query(ge=0, le=BIGINT.stop - 1, description="Rows to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Rows per page.")] = 100,
    after: Annotated[
        str | None, Query(max_length=500, description="`next_cursor` of the previous page.")
    ] = None,
) -> Paging:
    """The paging parameters of a list endpoint."""
    return Paging(skip, limit, after)


PagingDep = Annotated[Paging, Depends(get_paging)]
