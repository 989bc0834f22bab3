import json
from collections.abc import Sequence

import httpx
from aiokafka.errors import OutOfOrderSequenceNumber

from services.common.health import ReadyCheck, producer_ready, run_checks
from services.common.kafka import ProducerRenewal
from services.common.runtime import health_routes
from services.common.settings import ServiceSettings


async def passes() -> None:
    return None


async def fails() -> None:
    raise ConnectionRefusedError("connection refused")


def asgi_app(checks: Sequence[ReadyCheck]) -> object:
    """The worker's HTTP routes, served the way AsgiFastStream dispatches them."""
    routes = dict(health_routes(checks))

    async def app(scope: dict, receive: object, send: object) -> None:
        await routes[scope["path"]](scope, receive, send)

    return app


async def get(checks: Sequence[ReadyCheck], path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=asgi_app(checks))
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        return await client.get(path)


async def test_ready_answers_503_naming_the_failing_component() -> None:
    checks = [ReadyCheck("kafka", passes), ReadyCheck("database", fails)]

    response = await get(checks, "/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["database"]
    assert body["checks"]["kafka"] == "ok"
    assert "connection refused" in body["checks"]["database"]


async def test_ready_answers_200_when_every_dependency_answers() -> None:
    checks = [ReadyCheck("kafka", passes), ReadyCheck("storage", passes)]

    response = await get(checks, "/health/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "failing": [],
        "checks": {"kafka": "ok", "storage": "ok"},
    }


async def test_alive_answers_200_even_when_a_dependency_is_down() -> None:
    response = await get([ReadyCheck("database", fails)], "/health")

    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok"}


async def test_metrics_are_served_in_prometheus_text_format() -> None:
    response = await get([], "/metrics")

    assert response.status_code == 200
    assert "loan_engine_dead_letters_total" in response.text


async def test_a_check_that_hangs_is_reported_as_timed_out() -> None:
    async def hangs() -> None:
        import asyncio

        await asyncio.sleep(10)

    readiness = await run_checks([ReadyCheck("storage", hangs)], timeout=0.05)

    assert readiness.failing == ("storage",)
    assert readiness.checks["storage"].startswith("timed out")


async def test_kafka_check_fails_when_no_broker_listens() -> None:
    from services.common.health import kafka_ready

    settings = ServiceSettings(kafka_bootstrap_servers="127.0.0.1:1")

    readiness = await run_checks([kafka_ready(settings)], timeout=2)

    assert readiness.failing == ("kafka",)


async def test_producer_check_fails_while_sends_fail_and_passes_once_one_goes_through() -> None:
    async def install(_: object) -> None:
        return None

    renewal = ProducerRenewal(lambda: None, install, lambda: None, "rules")  # type: ignore[arg-type,return-value]
    check = producer_ready(renewal)

    renewal.failed(OutOfOrderSequenceNumber())
    failing = await run_checks([check])
    renewal.succeeded()
    passing = await run_checks([check])

    assert failing.failing == ("kafka-producer",)
    assert "OutOfOrderSequenceNumber" in failing.checks["kafka-producer"]
    assert passing.ready
