"""The gateway's API and projector processes as operators run them: `python -m
services.gateway.main` and `python -m services.gateway.projector.main`, with health, a standby
projector and SIGTERM (the review jobs process: test_review_jobs_process.py)."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PASSWORD, gateway_settings, publish_runs

from services.gateway.db import connect, migrate
from services.gateway.settings import GatewaySettings
from tests.net import free_port
from tests.unit.gateway.gateway_events import RunScenario

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[3]


def get(url: str, data: bytes | None = None) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=3) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except (urllib.error.URLError, OSError):
        return 0, {}


def wait_for(condition, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
async def process_settings(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewaySettings:
    settings = gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        topic_prefix,
        tmp_path_factory.mktemp("process-storage"),
    )
    await migrate(settings)
    return settings


@pytest.fixture
def environment(process_settings: GatewaySettings) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": process_settings.database_dsn,
        "KAFKA_BOOTSTRAP_SERVERS": process_settings.kafka_bootstrap_servers,
        "TOPIC_PREFIX": process_settings.topic_prefix,
        "STORAGE_ROOT": str(process_settings.storage_root),
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "GATEWAY_JWT_SECRET": "process-test-secret-long-enough-for-hs256",
        "GATEWAY_ADMIN_USERNAME": "boss",
        "GATEWAY_ADMIN_PASSWORD": PASSWORD,
    }


@pytest.fixture
def start(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """Start a module as a process; every one still running is killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def launch(module: str, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", module], env=env, cwd=PROJECT, stdout=log, stderr=log
        )
        started.append(process)
        return process

    yield launch
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def run_status(settings: GatewaySettings, scenario: RunScenario) -> str | None:
    conn = await connect(settings)
    try:
        return await conn.fetchval(
            "SELECT status FROM gateway.runs WHERE run_id = $1", scenario.run_id
        )
    finally:
        await conn.close()


async def projected(settings: GatewaySettings, scenario: RunScenario, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await run_status(settings, scenario) == "completed":
            return True
        await asyncio.sleep(0.3)
    return False


async def test_the_projector_process_projects_and_a_standby_takes_over_after_sigterm(
    process_settings: GatewaySettings,
    environment: dict[str, str],
    start,  # type: ignore[no-untyped-def]
) -> None:
    ports = [free_port(), free_port()]
    first = start(
        "services.gateway.projector.main",
        {**environment, "GATEWAY_PROJECTOR_HTTP_PORT": str(ports[0])},
        "projector-1",
    )
    ready = f"http://127.0.0.1:{ports[0]}/health/ready"
    assert await asyncio.to_thread(wait_for, lambda: get(ready)[0] == 200)
    _, body = get(ready)
    assert set(body["checks"]) == {"kafka", "database"}
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/metrics/", timeout=3).read()
    assert b"loan_engine_projector_chunk_seconds" in metrics

    standby = start(
        "services.gateway.projector.main",
        {**environment, "GATEWAY_PROJECTOR_HTTP_PORT": str(ports[1])},
        "projector-2",
    )
    health = f"http://127.0.0.1:{ports[1]}/health"
    assert await asyncio.to_thread(wait_for, lambda: get(health)[0] == 200)

    one = RunScenario(loans=7)
    await publish_runs(process_settings, [one])
    assert await projected(process_settings, one)

    first.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(first.wait, 30) == 0

    two = RunScenario(loans=4)
    await publish_runs(process_settings, [two])
    assert await projected(process_settings, two)
    assert standby.poll() is None
    standby.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(standby.wait, 30) == 0


async def test_the_api_process_serves_and_stops_cleanly_on_sigterm(
    environment: dict[str, str],
    start,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    port = free_port()
    api = start("services.gateway.main", {**environment, "GATEWAY_HTTP_PORT": str(port)}, "api")
    base = f"http://127.0.0.1:{port}"
    assert await asyncio.to_thread(wait_for, lambda: get(f"{base}/health")[0] == 200)
    form = urllib.parse.urlencode({"username": "boss", "password": PASSWORD}).encode()
    status, tokens = get(f"{base}/api/auth/login", data=form)
    assert status == 200
    assert tokens["token_type"] == "bearer"
    api.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught: -SIGTERM is expected.
    assert await asyncio.to_thread(api.wait, 30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in (tmp_path / "api.log").read_text()


async def terminate_projector_connections(settings: GatewaySettings) -> int:
    """Close the projector's database sessions from the server side, as `pg_ctl restart -m fast`
    does to every client: the projector sees AdminShutdown, then 'connection is closed'."""
    conn = await connect(settings)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'projector-projector' AND datname = current_database()"
            )
        )
    finally:
        await conn.close()


async def test_the_projector_reconnects_after_its_database_connections_are_killed(
    process_settings: GatewaySettings,
    environment: dict[str, str],
    start,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    port = free_port()
    projector = start(
        "services.gateway.projector.main",
        {**environment, "GATEWAY_PROJECTOR_HTTP_PORT": str(port)},
        "projector-reconnect",
    )
    ready = f"http://127.0.0.1:{port}/health/ready"
    assert await asyncio.to_thread(wait_for, lambda: get(ready)[0] == 200)
    before = RunScenario(loans=6)
    await publish_runs(process_settings, [before])
    assert await projected(process_settings, before)

    assert await terminate_projector_connections(process_settings) >= 2
    after = RunScenario(loans=9)
    await publish_runs(process_settings, [after])

    assert await projected(process_settings, after)
    assert projector.poll() is None
    assert (
        "projector lost a dependency, reconnecting"
        in (tmp_path / "projector-reconnect.log").read_text()
    )
    assert await asyncio.to_thread(wait_for, lambda: get(ready)[0] == 200)
    projector.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(projector.wait, 30) == 0
