"""Account and input controls through the real app: a password reset, deactivation or role change
revokes every token issued before it; forwarded headers count only from a trusted proxy (so the
per-IP login limit holds); dates are dates."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from conftest import (
    PASSWORD,
    World,
    _create_database,
    _drop_database,
    bearer,
    gateway_settings,
    login,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.gateway.db import alembic_config, connect, migrate
from tests.net import answers, free_port, stop

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[3]
NEW_PASSWORD = "a brand new passphrase"


async def _user_with_tokens(
    client: httpx.AsyncClient, world: World, username: str, role: str = "analyst"
) -> tuple[str, dict]:
    body = {
        "username": username,
        "email": f"{username}@example.com",
        "role": role,
        "password": PASSWORD,
    }
    created = await client.post("/api/admin/users", headers=world.admin, json=body)
    assert created.status_code == 201, created.text
    return created.json()["id"], await login(client, username)


async def _tokens_work(client: httpx.AsyncClient, tokens: dict) -> tuple[int, int]:
    me = await client.get("/api/auth/me", headers=bearer(tokens))
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    return me.status_code, refreshed.status_code


@pytest.mark.parametrize(
    ("username", "change"),
    [
        ("reset-user", {"password": NEW_PASSWORD}),
        ("promoted-user", {"role": "admin"}),
        ("retired-user", {"is_active": False}),
    ],
)
async def test_a_password_reset_role_change_or_deactivation_revokes_earlier_tokens(
    client: httpx.AsyncClient, world: World, username: str, change: dict
) -> None:
    user_id, tokens = await _user_with_tokens(client, world, username)
    assert (await client.get("/api/auth/me", headers=bearer(tokens))).status_code == 200
    patch = await client.patch(f"/api/admin/users/{user_id}", headers=world.admin, json=change)
    assert patch.status_code == 200, patch.text
    assert await _tokens_work(client, tokens) == (401, 401)


async def test_tokens_issued_after_a_password_reset_work(
    client: httpx.AsyncClient, world: World
) -> None:
    user_id, _ = await _user_with_tokens(client, world, "fresh-start")
    patch = await client.patch(
        f"/api/admin/users/{user_id}", headers=world.admin, json={"password": NEW_PASSWORD}
    )
    assert patch.status_code == 200
    tokens = await login(client, "fresh-start", NEW_PASSWORD)
    assert (await client.get("/api/auth/me", headers=bearer(tokens))).status_code == 200
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    assert (await client.get("/api/auth/me", headers=bearer(refreshed.json()))).status_code == 200


async def test_changing_only_an_email_keeps_the_users_tokens(
    client: httpx.AsyncClient, world: World
) -> None:
    user_id, tokens = await _user_with_tokens(client, world, "new-mail")
    patch = await client.patch(
        f"/api/admin/users/{user_id}", headers=world.admin, json={"email": "other@example.com"}
    )
    assert patch.status_code == 200
    assert (await client.get("/api/auth/me", headers=bearer(tokens))).status_code == 200


@pytest.mark.parametrize("pdate", [0, 1700000000, "2026-11-23T00:00:00", "23/11/2026", True])
async def test_a_run_request_whose_pdate_is_not_a_date_answers_422(
    client: httpx.AsyncClient, world: World, pdate: object
) -> None:
    response = await client.post("/api/pipeline/run", headers=world.admin, json={"pdate": pdate})
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["loc"] == ["body", "pdate"]


async def test_a_reprocess_whose_pdate_is_not_a_date_answers_422(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        f"/api/runs/{world.run_a1.run_id}/reprocess", headers=world.admin, json={"pdate": 0}
    )
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["loc"] == ["body", "pdate"]


# The login limit through the real server process: uvicorn decides who the client is.


@pytest.fixture(scope="module")
def process_environment(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    settings = gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        topic_prefix,
        tmp_path_factory.mktemp("limit-storage"),
    )
    asyncio.run(migrate(settings))
    return {
        **os.environ,
        "DATABASE_URL": fresh_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": topic_prefix,
        "STORAGE_ROOT": str(settings.storage_root),
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "GATEWAY_JWT_SECRET": "limit-test-secret-long-enough-for-hs256",
        "GATEWAY_RATE_LIMIT_ENABLED": "true",
        "GATEWAY_RATE_LIMIT_LOGIN": "5/minute",
    }


def _serve(environment: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.gateway.main"],
            env={**environment, "GATEWAY_HTTP_PORT": str(port)},
            cwd=PROJECT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not answers(f"{url}/health"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        stop(process)


def _login_statuses(url: str, forwarded_for: list[str]) -> list[int]:
    statuses = []
    form = urllib.parse.urlencode({"username": "nobody", "password": "wrong-password"}).encode()
    for address in forwarded_for:
        request = urllib.request.Request(
            f"{url}/api/auth/login", data=form, headers={"X-Forwarded-For": address}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
    return statuses


def test_a_made_up_forwarded_for_header_does_not_dodge_the_login_limit(
    process_environment: dict[str, str], tmp_path: Path
) -> None:
    addresses = [f"203.0.113.{n}" for n in range(1, 9)]
    for url in _serve(process_environment, tmp_path / "gateway.log"):
        statuses = _login_statuses(url, addresses)
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 3


def test_a_trusted_proxy_names_the_client_the_login_limit_counts(
    process_environment: dict[str, str], tmp_path: Path
) -> None:
    environment = {**process_environment, "GATEWAY_FORWARDED_ALLOW_IPS": "127.0.0.1"}
    for url in _serve(environment, tmp_path / "gateway.log"):
        # Each client behind the proxy has its own window: 8 clients, one attempt each.
        spread = _login_statuses(url, [f"198.51.100.{n}" for n in range(1, 9)])
        # One client behind the proxy still meets its limit.
        repeated = _login_statuses(url, ["192.0.2.7"] * 7)
    assert spread == [401] * 8
    assert repeated == [401] * 5 + [429] * 2


async def test_the_token_version_migration_upgrades_existing_users_and_downgrades(
    database_url: str, kafka_bootstrap_servers: str, topic_prefix: str, tmp_path: Path
) -> None:
    url = await _create_database(database_url)
    try:
        settings = gateway_settings(url, kafka_bootstrap_servers, topic_prefix, tmp_path)
        await migrate(settings, "0001")
        conn = await connect(settings)
        try:
            await conn.execute(
                "INSERT INTO gateway.users (id, username, email, role, password_hash)"
                " VALUES (gen_random_uuid(), 'old-timer', 'o@example.com', 'analyst', 'x')"
            )
        finally:
            await conn.close()
        await migrate(settings)
        conn = await connect(settings)
        try:
            version = await conn.fetchval(
                "SELECT token_version FROM gateway.users WHERE username = 'old-timer'"
            )
        finally:
            await conn.close()
        assert version == 0

        engine = create_async_engine(settings.database_dsn)

        def downgrade(connection: Connection) -> None:
            config = alembic_config(settings.database_dsn)
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")

        try:
            async with engine.begin() as connection:
                await connection.run_sync(downgrade)
        finally:
            await engine.dispose()
        await migrate(settings)
    finally:
        await _drop_database(database_url, url)
