"""Login, token and user shapes."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool

from services.gateway.identity.principal import Role
from services.gateway.patterns import TEAM_ID

# No `@`, control character or space of any kind on either side of one `@`. Spelled out rather
# than `\s`, whose meaning differs between regex engines (the OpenAPI's ECMA regex leaves out
# U+0085, pydantic's includes it).
_EMAIL_PART = r"[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+"
EMAIL_PATTERN = rf"^{_EMAIL_PART}@{_EMAIL_PART}$"
# A team name needs a letter or digit (its id is their slug) and no NUL character.
TEAM_NAME = r"^[^\x00]*[A-Za-z0-9][^\x00]*$"


class TokenResponse(BaseModel):
    """An access token (short-lived) and a refresh token."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds the access token stays valid.")


class RefreshRequest(BaseModel):
    """A refresh token to exchange for new tokens."""

    refresh_token: str


class LogoutRequest(BaseModel):
    """Optionally the refresh token to revoke with the access token in use."""

    refresh_token: str | None = None


class UserResponse(BaseModel):
    """A user, without secrets."""

    id: UUID
    username: str
    email: str
    role: Role
    team_id: str | None
    is_active: bool
    created_at: datetime


class UserCreate(BaseModel):
    """A new user."""

    username: str = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.@-]+$")
    email: str = Field(max_length=320, pattern=EMAIL_PATTERN)
    role: Role
    team_id: str | None = Field(None, max_length=100, pattern=TEAM_ID)
    password: str = Field(min_length=8, max_length=256)


class UserUpdate(BaseModel):
    """Changes to a user; omitted fields stay as they are."""

    email: str | None = Field(None, max_length=320, pattern=EMAIL_PATTERN)
    role: Role | None = None
    team_id: str | None = Field(None, max_length=100, pattern=TEAM_ID)
    is_active: StrictBool | None = None
    password: str | None = Field(None, min_length=8, max_length=256)


class TeamResponse(BaseModel):
    """A sales team."""

    id: str = Field(examples=["east-coast"])
    name: str = Field(examples=["East Coast"])
    created_at: datetime


class TeamCreate(BaseModel):
    """A new sales team; its id defaults to the slug of its name."""

    name: str = Field(min_length=1, max_length=200, pattern=TEAM_NAME)
    id: str | None = Field(None, max_length=100, pattern=TEAM_ID)
