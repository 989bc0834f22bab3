"""Gateway hardening on a small app: security headers, Server-Timing, rate limits, body limits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from limits.aio import storage as aio_storage
from pydantic import SecretStr

from services.gateway.admin.ops import REDACTED, redact, redacted_config
from services.gateway.identity.tokens import issue_token
from services.gateway.middleware import BodyLimitMiddleware, RequestIdMiddleware
from services.gateway.ratelimit import Limits, Outage, RateLimitMiddleware, async_storage
from services.gateway.security import API_CSP, DOCS_CSP
from services.gateway.security import SecurityHeadersMiddleware as Headers
from services.gateway.settings import GatewaySettings

SETTINGS = GatewaySettings(
    jwt_secret="unit-test-secret-key-with-enough-length-for-hs256",  # type: ignore[arg-type]
    environment="test",
)


def hardened_app(hardening: GatewaySettings) -> FastAPI:
    """A tiny API behind the gateway's middlewares, in the gateway's order."""
    app = FastAPI()

    @app.post("/api/auth/login")
    async def login() -> dict[str, str]:
        return {"ok": "login"}

    @app.post("/api/pipeline/run")
    async def run() -> dict[str, str]:
        return {"ok": "run"}

    @app.post("/api/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/api/things")
    async def things() -> list[str]:
        return []

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodyLimitMiddleware, max_bytes=hardening.max_body_bytes)
    app.add_middleware(RateLimitMiddleware, settings=hardening)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(Headers, hsts_seconds=hardening.hsts_seconds)
    return app


def hardening(**values: object) -> GatewaySettings:
    """Gateway settings with small limits and a private in-memory counter store."""
    defaults: dict[str, object] = {
        "jwt_secret": SETTINGS.jwt_secret,
        "environment": "test",
        "rate_limit_enabled": True,
        "rate_limit_storage": "memory://",
        "rate_limit_login": "3/minute",
        "rate_limit_runs": "2/minute",
        "rate_limit_api": "4/minute",
        "max_body_bytes": 1000,
    }
    defaults.update(values)
    return GatewaySettings(**defaults)  # type: ignore[arg-type]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=hardened_app(hardening()), client=("10.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


def bearer_of_new_user() -> dict[str, str]:
    token, _ = issue_token(SETTINGS, uuid.uuid4(), "access")
    return {"Authorization": f"Bearer {token}"}


async def test_api_responses_carry_the_owasp_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/things")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"] == API_CSP
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert "Strict-Transport-Security" not in response.headers


async def test_the_docs_get_a_policy_that_lets_swagger_ui_load(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == DOCS_CSP
    assert "Cross-Origin-Embedder-Policy" not in response.headers


async def test_hsts_is_sent_only_when_configured() -> None:
    app = hardened_app(hardening(hsts_seconds=31536000))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        response = await http.get("/health")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


async def test_every_response_says_how_long_the_app_took(client: httpx.AsyncClient) -> None:
    timing = (await client.get("/health")).headers["Server-Timing"]
    name, _, duration = timing.partition(";dur=")
    assert name == "app"
    assert float(duration) >= 0


async def test_a_sane_request_id_is_returned_and_a_bad_one_replaced(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/health", headers={"X-Request-ID": "req-123"})
    assert kept.headers["X-Request-ID"] == "req-123"
    replaced = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(replaced.headers["X-Request-ID"]) == 32


async def test_logins_beyond_the_limit_per_ip_answer_429_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    answers = [await client.post("/api/auth/login") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    refused = answers[3]
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert 0 <= int(refused.headers["X-RateLimit-Reset"]) <= 60
    assert refused.json() == {
        "error": "Too many requests",
        "status_code": 429,
        "request_id": refused.headers["X-Request-ID"],
    }
    assert refused.headers["X-Content-Type-Options"] == "nosniff"


async def test_login_limits_count_per_ip_not_per_token(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.post("/api/auth/login", headers=bearer_of_new_user())
    assert (await client.post("/api/auth/login", headers=bearer_of_new_user())).status_code == 429


async def test_api_limits_count_per_user(client: httpx.AsyncClient) -> None:
    alice, bob = bearer_of_new_user(), bearer_of_new_user()
    alice_codes = [(await client.get("/api/things", headers=alice)).status_code for _ in range(5)]
    assert alice_codes == [200, 200, 200, 200, 429]
    assert (await client.get("/api/things", headers=bob)).status_code == 200


async def test_run_requests_have_their_own_tighter_limit(client: httpx.AsyncClient) -> None:
    user = bearer_of_new_user()
    codes = [(await client.post("/api/pipeline/run", headers=user)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert (await client.get("/api/things", headers=user)).status_code == 200


async def test_health_is_never_rate_limited(client: httpx.AsyncClient) -> None:
    codes = {(await client.get("/health")).status_code for _ in range(10)}
    assert codes == {200}


async def test_a_forged_token_is_counted_by_ip_instead(client: httpx.AsyncClient) -> None:
    forged = {"Authorization": "Bearer not.a.token"}
    codes = [(await client.get("/api/things", headers=forged)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 200]
    assert (await client.get("/api/things")).status_code == 429


async def test_a_body_over_the_limit_answers_413_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/echo", content=b"x" * 1001)
    assert response.status_code == 413
    assert response.json()["error"] == "Payload too large"
    assert (await client.post("/api/echo", content=b"x" * 1000)).json() == {"bytes": 1000}


async def test_a_streamed_body_over_the_limit_answers_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"y" * 300

    response = await client.post("/api/echo", content=chunks())
    assert response.status_code == 413


def test_every_api_path_maps_to_exactly_the_limit_the_spec_names() -> None:
    limits = Limits.from_settings(GatewaySettings())
    assert limits.for_request("POST", "/api/auth/login") is limits.login
    assert limits.for_request("POST", "/api/pipeline/run") is limits.runs
    assert limits.for_request("POST", "/api/files/upload") is limits.uploads
    assert limits.for_request("GET", "/api/runs") is limits.api
    assert limits.for_request("GET", "/metrics") is None
    assert (limits.login.item.amount, limits.runs.item.amount) == (10, 5)
    assert (limits.uploads.item.amount, limits.api.item.amount) == (20, 100)
    assert limits.login.per_ip and not limits.api.per_ip


def test_a_plain_storage_uri_gets_the_asynchronous_backend() -> None:
    assert isinstance(async_storage("memory://"), aio_storage.MemoryStorage)
    assert isinstance(async_storage("async+memory://"), aio_storage.MemoryStorage)


def test_redaction_hides_secrets_secret_names_and_url_passwords() -> None:
    assert redact("jwt_secret", SecretStr("s3cr3t")) == REDACTED
    assert redact("api_key", "abc") == REDACTED
    assert redact("refresh_token", "eyJ...") == REDACTED
    assert redact("access_token_seconds", 900) == 900
    assert redact("environment", "test") == "test"
    url = redact("database_url", "postgresql+asyncpg://app:hunter2@db:5432/loans")
    assert url == f"postgresql+asyncpg://app:{REDACTED}@db:5432/loans"
    assert (
        redact("rate_limit_storage", "redis://:pw@cache:6379") == f"redis://:{REDACTED}@cache:6379"
    )


def test_redacted_config_never_contains_a_configured_secret_value() -> None:
    settings = GatewaySettings(
        jwt_secret="topsecret-signing-key-of-enough-length",  # type: ignore[arg-type]
        admin_password="hunter2-admin",  # type: ignore[arg-type]
        database_url="postgresql+asyncpg://app:dbpass99@db/loans",
    )
    config = redacted_config(settings)
    text = repr(config)
    for secret in ("topsecret-signing-key", "hunter2-admin", "dbpass99"):
        assert secret not in text
    assert config["jwt_secret"] == REDACTED
    assert config["rate_limit_api"] == "100/minute"


def test_rate_limits_apply_everywhere_but_the_test_environment_unless_configured() -> None:
    assert GatewaySettings(environment="development").rate_limited
    assert not GatewaySettings(environment="test").rate_limited
    assert GatewaySettings(environment="test", rate_limit_enabled=True).rate_limited
    assert not GatewaySettings(environment="development", rate_limit_enabled=False).rate_limited


def test_while_the_rate_limit_storage_answers_every_request_asks_it() -> None:
    outage = Outage(retry_seconds=5.0)
    assert all(outage.should_ask(now) for now in (0.0, 0.1, 100.0))
    assert outage.answered(100.0) is None


def test_during_an_outage_one_request_per_retry_interval_asks_the_storage() -> None:
    outage = Outage(retry_seconds=5.0)
    assert outage.failed(10.0) is True
    assert [outage.should_ask(now) for now in (10.0, 14.9, 15.0, 15.0, 19.9, 20.0)] == [
        False,
        False,
        True,
        False,
        False,
        True,
    ]


def test_an_outage_begins_once_and_its_end_says_how_long_it_lasted() -> None:
    outage = Outage(retry_seconds=5.0)
    assert [outage.failed(now) for now in (10.0, 15.0, 20.0)] == [True, False, False]
    assert outage.answered(26.5) == 16.5
    assert outage.answered(27.0) is None
    assert outage.failed(30.0) is True
