"""The ASGI metrics middleware on a tiny FastAPI app: labels come from route templates."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse

from services.common.metrics import (
    REGISTRY,
    HttpMetricsMiddleware,
    metrics_asgi_app,
    metrics_endpoint,
)


def requests(route: str, method: str, status: str) -> float:
    labels = {"route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value("loan_engine_http_requests_total", labels) or 0.0


def latencies(route: str, method: str) -> float:
    labels = {"route": route, "method": method}
    name = "loan_engine_http_request_duration_seconds_count"
    return REGISTRY.get_sample_value(name, labels) or 0.0


def an_app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/api")

    @router.get("/runs/{run_id}")
    async def get_run(run_id: str) -> dict[str, str]:
        """One run."""
        return {"run_id": run_id}

    @router.post("/runs/{run_id}/retry", status_code=202)
    async def retry_run(run_id: str) -> dict[str, str]:
        """Retry a run."""
        return {"run_id": run_id}

    @router.get("/boom")
    async def boom() -> None:
        """Fail inside the handler."""
        raise RuntimeError("internal detail")

    app.include_router(router)
    reports = FastAPI()

    @reports.get("/files/{name}")
    async def get_report(name: str) -> dict[str, str]:
        """One report file."""
        return {"name": name}

    app.mount("/reports", reports)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app.add_route("/health/{component}", health)
    app.add_route("/metrics", metrics_endpoint)
    app.mount("/mounted-metrics", metrics_asgi_app())
    app.add_middleware(HttpMetricsMiddleware)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=an_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def test_counts_requests_by_route_template_not_raw_path(client: httpx.AsyncClient) -> None:
    before = requests("/api/runs/{run_id}", "GET", "200")
    await client.get("/api/runs/3f1c")
    await client.get("/api/runs/9a2b")
    assert requests("/api/runs/{run_id}", "GET", "200") == before + 2
    assert requests("/api/runs/3f1c", "GET", "200") == 0


async def test_records_the_method_status_and_latency(client: httpx.AsyncClient) -> None:
    before = latencies("/api/runs/{run_id}/retry", "POST")
    response = await client.post("/api/runs/7/retry")
    assert response.status_code == 202
    assert requests("/api/runs/{run_id}/retry", "POST", "202") >= 1
    assert latencies("/api/runs/{run_id}/retry", "POST") == before + 1


async def test_unmatched_paths_share_one_route_label(client: httpx.AsyncClient) -> None:
    before = requests("unmatched", "GET", "404")
    await client.get("/api/no/such/path/1")
    await client.get("/api/no/such/path/2")
    assert requests("unmatched", "GET", "404") == before + 2


async def test_an_unhandled_error_is_counted_as_a_500(client: httpx.AsyncClient) -> None:
    before = requests("/api/boom", "GET", "500")
    response = await client.get("/api/boom")
    assert response.status_code == 500
    assert requests("/api/boom", "GET", "500") == before + 1


async def test_a_mounted_app_keeps_its_mount_prefix_in_the_route(
    client: httpx.AsyncClient,
) -> None:
    before = requests("/reports/files/{name}", "GET", "200")
    await client.get("/reports/files/purchase_tape.csv")
    assert requests("/reports/files/{name}", "GET", "200") == before + 1


async def test_a_plain_starlette_route_is_labelled_by_its_template(
    client: httpx.AsyncClient,
) -> None:
    before = requests("/health/{component}", "GET", "200")
    await client.get("/health/ready")
    assert requests("/health/{component}", "GET", "200") == before + 1


async def test_scrapes_of_the_metrics_path_are_not_counted(client: httpx.AsyncClient) -> None:
    await client.get("/metrics")
    response = await client.get("/metrics")  # would show the first scrape, were it counted
    assert response.status_code == 200
    assert "loan_engine_http_requests_total" in response.text
    assert 'route="/metrics' not in response.text


async def test_a_mounted_metrics_app_answers_behind_its_trailing_slash(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/mounted-metrics/")
    assert response.status_code == 200
    assert "loan_engine_http_requests_total" in response.text
