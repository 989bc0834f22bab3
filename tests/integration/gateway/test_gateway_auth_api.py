"""Logging in, tokens (tampered, expired, revoked), roles, and the admin's users and teams."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import PASSWORD, World, bearer, login

from services.gateway.identity.tokens import issue_token
from services.gateway.settings import GatewaySettings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("world")]


async def test_login_returns_access_and_refresh_tokens_for_the_first_admin(
    client: httpx.AsyncClient,
) -> None:
    tokens = await login(client, "root")
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] > 0
    me = await client.get("/api/auth/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json()["role"] == "admin"
    assert "password_hash" not in me.json()


async def test_login_with_a_wrong_password_answers_401_without_saying_which_part_was_wrong(
    client: httpx.AsyncClient,
) -> None:
    wrong = await client.post("/api/auth/login", data={"username": "root", "password": "nope"})
    unknown = await client.post("/api/auth/login", data={"username": "ghost", "password": "x"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"] == unknown.json()["error"]
    assert set(wrong.json()) == {"error", "status_code", "request_id"}


async def test_requests_without_a_token_answer_401_with_the_error_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/runs", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 401
    assert response.json() == {
        "error": "Not authenticated",
        "status_code": 401,
        "request_id": "req-123",
    }
    assert response.headers["X-Request-ID"] == "req-123"


async def test_a_tampered_token_answers_401(client: httpx.AsyncClient, world: World) -> None:
    token = world.analyst["Authorization"].removeprefix("Bearer ")
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = await client.get("/api/runs", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_an_expired_token_answers_401(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    me = await client.get("/api/auth/me", headers=world.analyst)
    user_id = me.json()["id"]
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    token, _ = issue_token(settings, user_id, "access", now=long_ago)
    response = await client.get("/api/runs", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_a_token_signed_with_another_key_answers_401(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    me = await client.get("/api/auth/me", headers=world.analyst)
    other = settings.model_copy(update={"jwt_secret": None})
    token, _ = issue_token(other, me.json()["id"], "access")
    response = await client.get("/api/runs", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_a_refresh_token_is_not_accepted_as_an_access_token(
    client: httpx.AsyncClient,
) -> None:
    tokens = await login(client, "analyst1")
    response = await client.get(
        "/api/runs", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
    )
    assert response.status_code == 401


async def test_logout_revokes_the_access_and_refresh_tokens(client: httpx.AsyncClient) -> None:
    tokens = await login(client, "analyst1")
    assert (await client.get("/api/auth/me", headers=bearer(tokens))).status_code == 200
    out = await client.post(
        "/api/auth/logout", headers=bearer(tokens), json={"refresh_token": tokens["refresh_token"]}
    )
    assert out.status_code == 204
    assert (await client.get("/api/auth/me", headers=bearer(tokens))).status_code == 401
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401


async def test_refresh_gives_new_tokens_and_the_refresh_token_works_only_once(
    client: httpx.AsyncClient,
) -> None:
    tokens = await login(client, "sales_a")
    first = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200
    assert (await client.get("/api/auth/me", headers=bearer(first.json()))).status_code == 200
    again = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401


async def test_a_refresh_token_spent_by_several_requests_at_once_gives_tokens_to_one(
    client: httpx.AsyncClient,
) -> None:
    tokens = await login(client, "sales_a")
    body = {"refresh_token": tokens["refresh_token"]}
    answers = await asyncio.gather(*(client.post("/api/auth/refresh", json=body) for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401, 401]


@pytest.mark.parametrize("who", ["analyst", "sales_a"])
async def test_admin_endpoints_answer_403_to_other_roles(
    client: httpx.AsyncClient, world: World, who: str
) -> None:
    headers = getattr(world, who)
    for method, path in (("GET", "/api/admin/users"), ("POST", "/api/admin/teams")):
        response = await client.request(method, path, headers=headers, json={"name": "x"})
        assert response.status_code == 403, path


async def test_an_admin_creates_a_team_and_a_sales_user_who_can_log_in(
    client: httpx.AsyncClient, world: World
) -> None:
    team = await client.post("/api/admin/teams", headers=world.admin, json={"name": "West Coast"})
    assert team.status_code == 201
    assert team.json()["id"] == "west-coast"
    duplicate = await client.post(
        "/api/admin/teams", headers=world.admin, json={"name": "West Coast"}
    )
    assert duplicate.status_code == 409
    body = {
        "username": "carol",
        "email": "carol@example.com",
        "role": "sales_team",
        "team_id": "west-coast",
        "password": PASSWORD,
    }
    created = await client.post("/api/admin/users", headers=world.admin, json=body)
    assert created.status_code == 201
    assert created.json()["team_id"] == "west-coast"
    assert (
        await client.post("/api/admin/users", headers=world.admin, json=body)
    ).status_code == 409
    tokens = await login(client, "carol")
    teams = await client.get("/api/sales-teams", headers=bearer(tokens))
    assert [t["id"] for t in teams.json()] == ["west-coast"]


async def test_a_sales_user_without_a_team_is_refused_with_400(
    client: httpx.AsyncClient, world: World
) -> None:
    body = {
        "username": "dave",
        "email": "d@example.com",
        "role": "sales_team",
        "password": PASSWORD,
    }
    response = await client.post("/api/admin/users", headers=world.admin, json=body)
    assert response.status_code == 400


async def test_a_deactivated_user_can_no_longer_use_its_token(
    client: httpx.AsyncClient, world: World
) -> None:
    body = {"username": "erin", "email": "e@example.com", "role": "analyst", "password": PASSWORD}
    created = await client.post("/api/admin/users", headers=world.admin, json=body)
    tokens = await login(client, "erin")
    patch = await client.patch(
        f"/api/admin/users/{created.json()['id']}", headers=world.admin, json={"is_active": False}
    )
    assert patch.status_code == 200
    assert (await client.get("/api/auth/me", headers=bearer(tokens))).status_code == 401
    listed = await client.get("/api/admin/users", headers=world.admin)
    assert "erin" in [u["username"] for u in listed.json()]
