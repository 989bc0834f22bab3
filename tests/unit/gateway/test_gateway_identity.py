"""Passwords and tokens (pure, no database)."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import jwt
import pytest

from services.gateway.identity.passwords import hash_password, verify_password
from services.gateway.identity.principal import Principal
from services.gateway.identity.tokens import InvalidToken, issue_token, verify_token
from services.gateway.settings import GatewaySettings

SETTINGS = GatewaySettings(jwt_secret="unit-test-secret-that-is-long-enough-for-hs256")


def test_a_password_hash_is_argon2_and_verifies_only_its_password() -> None:
    hashed = hash_password("s3cret-password")
    assert hashed.startswith("$argon2")
    assert verify_password("s3cret-password", hashed)
    assert not verify_password("other", hashed)
    assert not verify_password("s3cret-password", "not a hash")


def test_an_issued_access_token_verifies_to_its_user() -> None:
    user = uuid4()
    token, claims = issue_token(SETTINGS, user, "access")
    verified = verify_token(SETTINGS, token, "access")
    assert verified == claims
    assert verified.user_id == user


def test_an_access_token_is_not_a_refresh_token() -> None:
    token, _ = issue_token(SETTINGS, uuid4(), "access")
    with pytest.raises(InvalidToken):
        verify_token(SETTINGS, token, "refresh")


def test_an_expired_token_is_refused() -> None:
    token, _ = issue_token(SETTINGS, uuid4(), "access", now=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(InvalidToken):
        verify_token(SETTINGS, token, "access")


def test_a_token_with_a_changed_payload_is_refused() -> None:
    token, _ = issue_token(SETTINGS, uuid4(), "access")
    forged = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "sub": str(uuid4())},
        "another-key-of-sufficient-length-for-hmac-sha256",
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        verify_token(SETTINGS, forged, "access")


def test_an_unsigned_token_is_refused() -> None:
    token, _ = issue_token(SETTINGS, uuid4(), "access")
    payload = jwt.decode(token, options={"verify_signature": False})
    unsigned = jwt.encode(payload, key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        verify_token(SETTINGS, unsigned, "access")


def test_each_token_has_its_own_jti() -> None:
    user = uuid4()
    assert (
        issue_token(SETTINGS, user, "access")[1].jti != issue_token(SETTINGS, user, "access")[1].jti
    )


def test_production_settings_refuse_to_start_without_a_jwt_secret() -> None:
    with pytest.raises(ValueError, match="GATEWAY_JWT_SECRET"):
        GatewaySettings(environment="production", jwt_secret=None)


def test_only_sales_team_users_are_scoped_to_a_team() -> None:
    assert Principal(uuid4(), "s", "sales_team", "team-a").team_scope == "team-a"
    assert Principal(uuid4(), "a", "analyst", None).team_scope is None


def test_a_token_carries_the_users_token_version() -> None:
    token, claims = issue_token(SETTINGS, uuid4(), "refresh", version=3)
    assert claims.version == 3
    assert verify_token(SETTINGS, token, "refresh").version == 3


def _signed(payload: dict) -> str:
    return jwt.encode(payload, SETTINGS.signing_key, algorithm=SETTINGS.jwt_algorithm)


def _payload(**changes: object) -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    payload = {
        "sub": str(uuid4()),
        "typ": "access",
        "jti": "j",
        "iss": SETTINGS.jwt_issuer,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    return payload | changes


def test_a_token_from_before_token_versions_is_of_version_zero() -> None:
    assert verify_token(SETTINGS, _signed(_payload()), "access").version == 0


@pytest.mark.parametrize("version", ["1", 1.0, True, None])
def test_a_token_version_that_is_not_an_integer_is_refused(version: object) -> None:
    with pytest.raises(InvalidToken):
        verify_token(SETTINGS, _signed(_payload(ver=version)), "access")
