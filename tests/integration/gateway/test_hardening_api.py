"""The real gateway app hardened: rate-limited logins, security headers, `/metrics` without a
redirect, and logs that never hold a password or a token."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import PASSWORD, World
from fastapi import APIRouter

from services.common.logs import JsonFormatter
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


broken = APIRouter()


@broken.get("/diagnostics/crash")
async def crash() -> None:
    """An admin route that fails inside, with secrets and paths in its message."""
    raise RuntimeError("token=eyJhbGciOi at /srv/loan-engine/services/gateway/secret.py line 7")


@pytest.fixture(scope="module")
async def limited(migrated: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with the production rate limits switched on, in its own memory store."""
    hardened = migrated.model_copy(
        update={"rate_limit_enabled": True, "rate_limit_storage": "memory://"}
    )
    app = create_app(hardened, admin_routers=[broken])
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line the process writes, JSON-formatted, SQL statements and parameters too."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("gateway"))
    root = logging.getLogger()
    saved = root.level, logging.getLogger("sqlalchemy.engine").level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        logging.getLogger("sqlalchemy.engine").setLevel(saved[1])


async def test_the_eleventh_login_a_minute_from_one_ip_answers_429(
    limited: httpx.AsyncClient,
) -> None:
    form = {"username": "analyst1", "password": "wrong password"}
    answers = [await limited.post("/api/auth/login", data=form) for _ in range(11)]
    assert [a.status_code for a in answers[:10]] == [401] * 10
    refused = answers[10]
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "10"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["request_id"] == refused.headers["X-Request-ID"]


async def test_api_answers_carry_rate_limit_and_security_headers(
    limited: httpx.AsyncClient, world: World
) -> None:
    response = await limited.get("/api/runs", headers=world.analyst)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == "100"
    assert int(response.headers["X-RateLimit-Remaining"]) < 100
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["Server-Timing"].startswith("app;dur=")


async def test_metrics_answer_at_their_path_without_a_redirect(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "loan_engine_runs_total" in response.text


async def test_a_json_body_over_the_limit_answers_413(
    client: httpx.AsyncClient, world: World
) -> None:
    big = b'{"pdate": "2026-11-23", "folder": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = await client.post(
        "/api/pipeline/run",
        content=big,
        headers={**world.analyst, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "Payload too large"


@pytest.mark.usefixtures("world")
async def test_a_login_logs_neither_the_password_nor_the_tokens(
    client: httpx.AsyncClient, captured_logs: io.StringIO
) -> None:
    response = await client.post(
        "/api/auth/login", data={"username": "analyst1", "password": PASSWORD}
    )
    assert response.status_code == 200
    tokens = response.json()
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    written = captured_logs.getvalue()
    # The SQL log saw the login's queries: the check below looked at real output.
    assert "gateway" in written and "SELECT" in written
    issued = (tokens["access_token"], tokens["refresh_token"], refreshed.json()["access_token"])
    for secret in (PASSWORD, *issued):
        assert secret not in written


async def test_an_internal_error_answers_500_with_security_headers_and_no_internals(
    limited: httpx.AsyncClient, world: World
) -> None:
    response = await limited.get("/api/admin/diagnostics/crash", headers=world.admin)
    assert response.status_code == 500
    assert response.json() == {
        "error": "Internal server error",
        "status_code": 500,
        "request_id": response.headers["X-Request-ID"],
    }
    for internal in ("eyJhbGciOi", "/srv", "secret.py", "RuntimeError", "Traceback"):
        assert internal not in response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Server-Timing"].startswith("app;dur=")
