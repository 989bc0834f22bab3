"""A real gateway for the API fuzzer: `python -m services.gateway.main` over a migrated database of
its own, the session's Kafka topics and local storage, on a free loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.cli.stack import databases
from services.common.storage import LocalStorage
from services.gateway.db import connect, migrate
from services.gateway.projector.plan import plan
from services.gateway.projector.writer import write_chunk
from services.gateway.settings import GatewaySettings
from tests.conftest import run_async
from tests.net import answers, free_port, stop
from tests.unit.gateway.gateway_events import CREATED_AT, REPORT_KEYS, RunScenario

PROJECT = Path(__file__).resolve().parents[2]
ADMIN = "fuzz-admin"
PASSWORD = "fuzz-admin-password"


@dataclass(frozen=True)
class Gateway:
    """A running gateway process: its base URL, an admin's tokens and its log file."""

    url: str
    access_token: str
    refresh_token: str
    admin_id: str
    run_id: str
    log: Path


def _login(url: str) -> dict[str, str]:
    form = urllib.parse.urlencode({"username": ADMIN, "password": PASSWORD}).encode()
    with urllib.request.urlopen(f"{url}/api/auth/login", data=form, timeout=10) as response:
        return json.loads(response.read())


def _me(url: str, token: str) -> dict[str, str]:
    request = urllib.request.Request(
        f"{url}/api/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def _seed(settings: GatewaySettings, storage: Path) -> RunScenario:
    """A completed run as the projector writes it, with its reports and archive in storage, so
    the run operations reach their logic rather than a 404."""
    scenario = RunScenario(loans=25, created_at=CREATED_AT)
    conn = await connect(settings)
    try:
        await write_chunk(conn, plan(list(scenario.records(ended=True))), {}, 0)
    finally:
        await conn.close()
    files = LocalStorage(storage)
    for key in REPORT_KEYS:
        body = f"seller_loan_number\r\n{key}\r\n".encode()
        await files.put_bytes(f"outputs/{scenario.run_id}/{key}.csv", body)
        await files.put_bytes(f"archive/{scenario.run_id}/output/{key}.csv", body)
    await files.put_bytes(f"archive/{scenario.run_id}/input/tape.csv", b"a,b\r\n1,2\r\n")
    await files.put_bytes("inputs/tapes/tape.csv", b"a,b\r\n1,2\r\n")
    return scenario


@pytest.fixture(scope="session")
def fuzz_database_url(_postgres_server_url: str) -> Iterator[str]:
    """A database of the fuzzer's own: what it creates never meets another test's data."""
    name = f"test_fuzz_{os.getpid()}_{time.monotonic_ns() % 10**8}"
    url = run_async(lambda: databases.create_database(_postgres_server_url, name))
    try:
        yield url
    finally:
        run_async(lambda: databases.drop_database(_postgres_server_url, name))


@pytest.fixture(scope="session")
def gateway(
    fuzz_database_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    """The gateway as operators run it, with a first admin; stopped at the end."""
    storage = tmp_path_factory.mktemp("fuzz-storage")
    log = tmp_path_factory.mktemp("fuzz-gateway") / "gateway.log"
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": fuzz_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": topic_prefix,
        "STORAGE_TYPE": "local",
        "STORAGE_ROOT": str(storage),
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "GATEWAY_HTTP_PORT": str(port),
        "GATEWAY_JWT_SECRET": "fuzz-secret-long-enough-for-hs256-signatures",
        "GATEWAY_ADMIN_USERNAME": ADMIN,
        "GATEWAY_ADMIN_PASSWORD": PASSWORD,
        "GATEWAY_ADMIN_EMAIL": "fuzz@example.com",
        "GATEWAY_ACCESS_TOKEN_SECONDS": "3600",
        # A run request may wait for its run; nothing runs it here, so keep the wait short.
        "GATEWAY_RUN_WAIT_MAX_SECONDS": "1",
        "GATEWAY_UPLOAD_MAX_BYTES": str(256 * 1024),
    }
    settings = GatewaySettings(database_url=fuzz_database_url)  # type: ignore[call-arg]
    run_async(lambda: migrate(settings))
    scenario = run_async(lambda: _seed(settings, storage))
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.gateway.main"],
            cwd=PROJECT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not answers(f"{url}/health/ready"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the gateway did not get ready:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        tokens = _login(url)
        me = _me(url, tokens["access_token"])
        yield Gateway(
            url,
            tokens["access_token"],
            tokens["refresh_token"],
            me["id"],
            str(scenario.run_id),
            log,
        )
    finally:
        stop(process)
