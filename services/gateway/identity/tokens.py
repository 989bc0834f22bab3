"""JWTs (PyJWT, HMAC): a short-lived access token and a refresh token, each with its own `jti`."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID, uuid4

import jwt

from services.gateway.settings import GatewaySettings

TokenType = Literal["access", "refresh"]


class InvalidToken(Exception):
    """A token that is malformed, tampered with, expired or of the wrong kind."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says."""

    user_id: UUID
    token_type: TokenType
    jti: str
    expires_at: datetime
    version: int = 0


def issue_token(
    settings: GatewaySettings,
    user_id: UUID,
    token_type: TokenType,
    now: datetime | None = None,
    version: int = 0,
) -> tuple[str, TokenClaims]:
    """A signed token of `token_type` for `user_id`, issued at `now`, of the user's token
    `version` (tokens of an older version are refused)."""
    # JWT times are whole seconds; the claims returned say exactly what the token says.
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    lifetime = (
        settings.access_token_seconds if token_type == "access" else settings.refresh_token_seconds
    )
    claims = TokenClaims(
        user_id, token_type, uuid4().hex, issued + timedelta(seconds=lifetime), version
    )
    payload = {
        "sub": str(user_id),
        "typ": token_type,
        "jti": claims.jti,
        "iss": settings.jwt_issuer,
        "iat": issued,
        "exp": claims.expires_at,
        "ver": version,
    }
    token = jwt.encode(payload, settings.signing_key, algorithm=settings.jwt_algorithm)
    return token, claims


def verify_token(settings: GatewaySettings, token: str, token_type: TokenType) -> TokenClaims:
    """The claims of a valid token of `token_type`; InvalidToken for anything else."""
    try:
        payload = jwt.decode(
            token,
            settings.signing_key,
            algorithms=[settings.jwt_algorithm],
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "typ", "jti", "exp", "iat", "iss"]},
        )
        if payload["typ"] != token_type:
            raise InvalidToken(f"not an {token_type} token")
        # Tokens issued before versions existed carry none: version 0, the column's default.
        version = payload.get("ver", 0)
        if type(version) is not int:
            raise InvalidToken("token version is not an integer")
        return TokenClaims(
            UUID(payload["sub"]),
            token_type,
            str(payload["jti"]),
            datetime.fromtimestamp(payload["exp"], UTC),
            version,
        )
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as error:
        raise InvalidToken(type(error).__name__) from error
