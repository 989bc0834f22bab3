"""The app as a whole: health, OpenAPI, internal errors that leak nothing, admin extensions."""

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import World
from fastapi import APIRouter

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

diagnostics = APIRouter()


@diagnostics.get("/diagnostics/boom")
async def boom() -> None:
    """An admin route that fails inside (stands in for any bug)."""
    raise RuntimeError("password=hunter2 at /srv/loan-engine/services/secret.py")


@pytest.fixture(scope="module")
async def extended(migrated: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(migrated, admin_routers=[diagnostics])
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


async def test_an_internal_error_answers_500_without_leaking_anything(
    extended: httpx.AsyncClient, world: World
) -> None:
    response = await extended.get("/api/admin/diagnostics/boom", headers=world.admin)
    assert response.status_code == 500
    body = response.json()
    assert body == {
        "error": "Internal server error",
        "status_code": 500,
        "request_id": response.headers["X-Request-ID"],
    }
    assert "hunter2" not in response.text
    assert "/srv" not in response.text


async def test_extra_admin_routers_are_for_admins_only(
    extended: httpx.AsyncClient, world: World
) -> None:
    response = await extended.get("/api/admin/diagnostics/boom", headers=world.analyst)
    assert response.status_code == 403


async def test_health_readiness_and_metrics_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"database", "kafka", "storage"}
    metrics = await client.get("/metrics/")
    assert "loan_engine_http_requests_total" in metrics.text


async def test_the_openapi_document_lists_every_endpoint(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/auth/login",
        "/api/pipeline/run",
        "/api/runs/{run_id}/progress",
        "/api/exceptions/export",
        "/api/files/upload",
        "/api/admin/users",
    ):
        assert path in paths
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_routes_answer_404_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert set(response.json()) == {"error", "status_code", "request_id"}
