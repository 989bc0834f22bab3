"""The gateway end to end over the real pipeline: upload a golden tape through `/files`, run it
with `POST /pipeline/run?wait=`, then runs, progress, summary, loans, exceptions, both exports,
the four report downloads and the archive must all agree with the tape's expected results.

The four workers run as processes; the API and the projector run in this process against the same
broker, database and storage.
"""

import asyncio
import csv
import hashlib
import io
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import bearer, gateway_settings, login
from openpyxl import load_workbook

from contracts.runs import REPORT_KEYS
from services.cli.stack import supervisor
from services.gateway.app import create_app
from services.gateway.db import connect, migrate
from services.gateway.facts.exports import escape_cell
from services.gateway.projector.consumer import Projector
from services.gateway.projector.maintenance import try_projector_lock
from services.gateway.settings import GatewaySettings
from tests.net import answers, free_port
from tests.paths import GOLDEN

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[3]
WORKERS = {
    "ingest": "services.ingest.main",
    "rules": "services.rules.main",
    "pricing": "services.pricing.main",
    "reporting": "services.reporting.main",
}
WAIT_SECONDS = 240


@pytest.fixture(scope="module")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-e2e")


@pytest.fixture(scope="module")
def e2e_settings(
    fresh_database_url: str, kafka_bootstrap_servers: str, topic_prefix: str, e2e_root: Path
) -> GatewaySettings:
    return gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        topic_prefix,
        e2e_root / "storage",
        upload_max_bytes=20 * 1024 * 1024,
        run_wait_poll_seconds=0.25,
    )


@pytest.fixture(scope="module")
def workers(e2e_settings: GatewaySettings, e2e_root: Path) -> Iterator[None]:
    """The four pipeline workers as processes on the same broker, database and storage."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": e2e_settings.kafka_bootstrap_servers,
        "TOPIC_PREFIX": e2e_settings.topic_prefix,
        "DATABASE_URL": e2e_settings.database_dsn,
        "STORAGE_TYPE": "local",
        "STORAGE_ROOT": str(e2e_settings.storage_root),
        "INGEST_STATE_DIR": str(e2e_root / "ingest-state"),
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    logs = e2e_root / "logs"
    spawned: dict[str, supervisor.Spawned] = {}
    try:
        for name, module in WORKERS.items():
            port = free_port()
            argv = [sys.executable, "-m", module]
            worker_env = {**env, f"{name.upper()}_HTTP_PORT": str(port)}
            spawned[name] = supervisor.spawn(
                argv, logs / f"{name}.log", env=worker_env, cwd=PROJECT
            )
            url = f"http://127.0.0.1:{port}/health/ready"
            if not supervisor.wait_until(lambda url=url: answers(url), timeout=120):
                pytest.fail(f"{name} never became ready:\n{supervisor.tail(logs / f'{name}.log')}")
        yield
    finally:
        for process in spawned.values():
            supervisor.stop(process)


@pytest.fixture(scope="module")
async def gateway(
    e2e_settings: GatewaySettings,
    workers: None,  # noqa: ARG001 - the pipeline must run before the API is used
) -> AsyncIterator[httpx.AsyncClient]:
    """The API and the projector, in process."""
    await migrate(e2e_settings)
    conn = await connect(e2e_settings)
    # The lock the projector process holds: a rebuild then resets the read models and waits for
    # this projector to replay them, as in a deployment, instead of running a second projector
    # beside it (two building the same dropped indexes at once collided).
    assert await try_projector_lock(conn)
    projector = Projector(e2e_settings, conn)
    await projector.start()
    stop = asyncio.Event()
    projecting = asyncio.create_task(projector.run(stop))
    app = create_app(e2e_settings)
    try:
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://gateway", timeout=WAIT_SECONDS + 30
            ) as client:
                yield client
    finally:
        stop.set()
        await projecting
        await projector.stop()
        await conn.close()


async def all_pages(client: httpx.AsyncClient, path: str, params: dict, headers: dict) -> list:
    items: list = []
    query = {**params, "limit": 1000}
    while True:
        page = (await client.get(path, params=query, headers=headers)).json()
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        query = {**query, "after": page["next_cursor"]}


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_a_golden_tape_uploaded_and_run_through_the_api_agrees_everywhere(
    gateway: httpx.AsyncClient, kind: str
) -> None:
    client = gateway
    headers = bearer(await login(client, "root"))
    tape = next((GOLDEN / kind).glob("tape.*"))
    expected_dir = GOLDEN / kind / "expected"
    golden = json.loads((expected_dir / "run.json").read_text(encoding="utf-8"))
    folder = f"golden-{kind}-{uuid4().hex[:6]}"

    upload = await client.post(
        "/api/files/upload",
        params={"path": folder},
        files={"file": (tape.name, tape.read_bytes())},
        headers=headers,
    )
    assert upload.status_code == 201, upload.text

    response = await client.post(
        "/api/pipeline/run",
        params={"wait": WAIT_SECONDS},
        json={"pdate": "2026-11-23", "irr_target": "8.05", "folder": folder},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    run = response.json()
    run_id = run["run_id"]
    assert (run["status"], run["error"]) == ("completed", None)
    assert run["total_loans"] == golden["total_loans"]
    assert run["total_balance"] == golden["total_balance"]
    assert run["exceptions_count"] == golden["exceptions_count"]
    assert {k: v for k, v in run["dispositions"].items() if v} == golden["dispositions"]

    listed = await client.get("/api/runs", params={"status": "completed"}, headers=headers)
    assert run_id in [item["run_id"] for item in listed.json()["items"]]
    progress = (await client.get(f"/api/runs/{run_id}/progress", headers=headers)).json()
    assert progress["overall_percent"] == "100.00"
    assert {phase["status"] for phase in progress["phases"]} == {"completed"}

    summary = (await client.get(f"/api/summary/{run_id}", headers=headers)).json()
    checks = summary["eligibility_checks"]
    assert summary["total_loans"] == golden["total_loans"]
    assert summary["exceptions_count"] == golden["exceptions_count"]
    assert checks["total_loans"] == golden["total_loans"]
    for disposition in ("to_purchase", "projected", "rejected"):
        assert checks[disposition] == golden["dispositions"].get(disposition, 0)
    assert sum(checks["exceptions_by_type"].values()) == golden["exceptions_count"]

    loans = await all_pages(client, "/api/loans", {"run_id": run_id}, headers)
    assert len(loans) == golden["total_loans"]
    assert [loan["seq"] for loan in loans] == list(range(1, len(loans) + 1))
    purchase = (expected_dir / "purchase_tape.csv").read_text(encoding="utf-8")
    purchased = [row["seller_loan_number"] for row in csv.DictReader(io.StringIO(purchase))]
    api_purchased = [
        escape_cell(loan["seller_loan_number"] or "")
        for loan in loans
        if loan["disposition"] == "to_purchase"
    ]
    assert api_purchased == purchased

    exceptions = await all_pages(client, "/api/exceptions", {"run_id": run_id}, headers)
    assert len(exceptions) == golden["exceptions_count"]
    exported = await client.get(
        "/api/exceptions/export", params={"run_id": run_id, "format": "csv"}, headers=headers
    )
    assert len(list(csv.DictReader(io.StringIO(exported.text)))) == golden["exceptions_count"]
    workbook = await client.get(
        "/api/exceptions/export", params={"run_id": run_id, "format": "xlsx"}, headers=headers
    )
    sheet = load_workbook(io.BytesIO(workbook.content), read_only=True).active
    assert sum(1 for _ in sheet.iter_rows()) == golden["exceptions_count"] + 1

    outputs = (await client.get(f"/api/runs/{run_id}/notebook-outputs", headers=headers)).json()
    assert {item["key"]: item["sha256"] for item in outputs} == golden["sha256"]
    for key in REPORT_KEYS:
        report = await client.get(
            f"/api/runs/{run_id}/notebook-outputs/{key}/download", headers=headers
        )
        assert hashlib.sha256(report.content).hexdigest() == golden["sha256"][key], key
        assert report.content == (expected_dir / f"{key}.csv").read_bytes()

    archive = (await client.get(f"/api/runs/{run_id}/archive", headers=headers)).json()
    assert [entry["name"] for entry in archive["input"]] == [tape.name]
    assert sorted(entry["name"] for entry in archive["output"]) == sorted(
        f"{key}.csv" for key in REPORT_KEYS
    )
    archived = await client.get(
        f"/api/runs/{run_id}/archive/download",
        params={"path": f"input/{tape.name}"},
        headers=headers,
    )
    assert archived.content == tape.read_bytes()
