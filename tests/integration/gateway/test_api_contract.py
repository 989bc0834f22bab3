"""What the API fuzzer found, pinned through the real app over real PostgreSQL and Kafka: every
error answer is in the OpenAPI with the one error body, long paths and unstorable text are clear
client errors, an empty dead-letter topic is an empty list, and 405 names every allowed method."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import PASSWORD, World, gateway_settings
from fastapi import APIRouter
from sqlalchemy import text

from services.gateway.app import create_app
from services.gateway.db import migrate
from services.gateway.deps import SessionDep

pytestmark = pytest.mark.integration

LONG_NAME = "n" * 300
FILE_CALLS = [
    ("DELETE", "/api/files"),
    ("GET", "/api/files/download"),
    ("GET", "/api/files/list"),
    ("POST", "/api/files/mkdir"),
]


@pytest.mark.parametrize(("method", "path"), FILE_CALLS)
async def test_a_name_longer_than_the_file_system_keeps_answers_400_naming_the_limit(
    client: httpx.AsyncClient, world: World, method: str, path: str
) -> None:
    response = await client.request(
        method, path, params={"path": f"folder/{LONG_NAME}"}, headers=world.admin
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "Each name in a path is limited to 255 bytes (UTF-8)"


async def test_a_path_longer_than_storage_keeps_answers_400_naming_the_limit(
    client: httpx.AsyncClient, world: World
) -> None:
    path = "/".join(["é" * 100] * 4)  # 400 characters, 800 bytes, each name 200 bytes
    response = await client.post("/api/files/mkdir", params={"path": path}, headers=world.admin)
    assert response.status_code == 201, response.text
    deeper = "/".join(["é" * 100] * 6)
    response = await client.post("/api/files/mkdir", params={"path": deeper}, headers=world.admin)
    assert (response.status_code, response.json()["error"]) == (
        400,
        "Paths are limited to 1000 bytes (UTF-8)",
    )


async def test_an_archive_path_with_a_name_too_long_answers_400(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        f"/api/runs/{world.run_a1.run_id}/archive/download",
        params={"path": f"input/{LONG_NAME}.csv"},
        headers=world.admin,
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Team\x00NUL"},
        {"name": "!!!"},
    ],
)
async def test_a_team_name_with_a_nul_or_without_letters_answers_422(
    client: httpx.AsyncClient, world: World, body: dict
) -> None:
    response = await client.post("/api/admin/teams", headers=world.admin, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["loc"] == ["body", "name"]


async def test_a_lone_surrogate_in_a_team_name_answers_422(
    client: httpx.AsyncClient, world: World
) -> None:
    raw = b'{"name": "Team \\ud800"}'
    headers = {**world.admin, "Content-Type": "application/json"}
    response = await client.post("/api/admin/teams", headers=headers, content=raw)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "change",
    [
        {"email": "nul\x00@example.com"},
        {"team_id": "team\x00a"},
        {"username": "nul\x00user"},
    ],
)
async def test_a_user_with_a_nul_character_answers_422(
    client: httpx.AsyncClient, world: World, change: dict
) -> None:
    body = {"username": "nul-test", "email": "n@example.com", "role": "analyst"}
    body |= {"password": PASSWORD, **change}
    response = await client.post("/api/admin/users", headers=world.admin, json=body)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("space", ["\x85", "\u00a0", "\u2003", "\ufeff", " "])
async def test_an_email_with_any_kind_of_space_answers_422(
    client: httpx.AsyncClient, world: World, space: str
) -> None:
    body = {"username": "spacey", "email": f"a{space}b@example.com", "role": "analyst"}
    response = await client.post(
        "/api/admin/users", headers=world.admin, json={**body, "password": PASSWORD}
    )
    assert response.status_code == 422, response.text


def _patterns(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(value) for value in node))
    return set()


async def test_every_pattern_in_the_openapi_means_the_same_to_every_regex_engine(
    client: httpx.AsyncClient,
) -> None:
    # `\s`, `\w`, `\d` and `\b` differ between ECMA regex (what clients and schemathesis read)
    # and the engine that validates requests; a pattern spells its classes out instead.
    patterns = _patterns((await client.get("/openapi.json")).json())
    assert patterns
    for pattern in patterns:
        assert not re.search(r"\\[swdbSWDB]", pattern), pattern


async def test_a_nul_character_in_a_filter_answers_422_not_500(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        "/api/exceptions", params={"exception_type": "a\x00b"}, headers=world.admin
    )
    assert response.status_code == 422, response.text


async def test_a_login_name_with_a_nul_character_is_just_wrong(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/login", data={"username": "root\x00", "password": PASSWORD}
    )
    assert response.status_code == 401


async def test_a_method_not_allowed_names_every_method_of_the_path(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.put("/api/admin/users", headers=world.admin)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["status_code"] == 405


async def test_a_json_body_that_does_not_parse_answers_a_documented_400(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = {**world.admin, "Content-Type": "application/json"}
    response = await client.post("/api/admin/teams", headers=headers, content=b"\xff\xfe{")
    assert response.status_code in (400, 422)
    schema = (await client.get("/openapi.json")).json()
    documented = schema["paths"]["/api/admin/teams"]["post"]["responses"]
    assert str(response.status_code) in documented


@pytest.fixture(scope="module")
async def empty_log_client(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway over topics of this module's own: nothing was ever dead-lettered there."""
    settings = gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        module_topic_prefix,
        Path(tmp_path_factory.mktemp("empty-log")),
    )
    await migrate(settings)
    # A route that hands its text straight to PostgreSQL, as any query of the API would.
    probe = APIRouter()

    @probe.get("/stored-text")
    async def stored_text(value: str, session: SessionDep) -> dict[str, str]:
        stored = await session.scalar(text("SELECT CAST(:value AS text)"), {"value": value})
        return {"stored": str(stored)}

    application = create_app(settings, admin_routers=[probe])
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            form = {"username": "root", "password": PASSWORD}
            tokens = (await http.post("/api/auth/login", data=form)).json()
            http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
            yield http


async def test_dead_letters_of_an_empty_topic_are_an_empty_json_list(
    empty_log_client: httpx.AsyncClient,
) -> None:
    for _ in range(3):
        response = await empty_log_client.get("/api/admin/dead-letters")
        assert (response.status_code, response.json()) == (200, [])
        assert response.headers["content-type"] == "application/json"


async def test_text_postgresql_cannot_store_answers_422_wherever_it_reaches_a_query(
    empty_log_client: httpx.AsyncClient,
) -> None:
    stored = await empty_log_client.get("/api/admin/stored-text", params={"value": "plain"})
    assert stored.json() == {"stored": "plain"}
    refused = await empty_log_client.get("/api/admin/stored-text", params={"value": "a\x00b"})
    assert refused.status_code == 422
    assert refused.json()["error"] == "Text must not contain NUL characters"
    assert refused.json()["request_id"]


async def test_consumer_groups_with_nothing_committed_are_an_empty_json_list(
    empty_log_client: httpx.AsyncClient,
) -> None:
    response = await empty_log_client.get("/api/admin/consumer-groups")
    assert response.status_code == 200, response.text
    assert all(group["partitions"] for group in response.json())


async def test_the_openapi_documents_every_error_answer_with_the_error_body(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    error_body = {"$ref": "#/components/schemas/ErrorResponse"}
    assert "HTTPValidationError" not in json.dumps(schema)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = {code for code in operation["responses"] if code.startswith(("4", "5"))}
            if path.startswith("/api/") and path not in ("/api/auth/login", "/api/auth/refresh"):
                assert {"401", "429"} <= errors, (method, path)
            if path.startswith("/api/admin/"):
                assert "403" in errors, (method, path)
            if "{" in path:
                assert "404" in errors, (method, path)
            for code in errors:
                content = operation["responses"][code]["content"]["application/json"]
                assert content["schema"] == error_body, (method, path, code)
