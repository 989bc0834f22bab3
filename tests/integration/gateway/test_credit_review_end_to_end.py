"""Credit review end to end (SPEC §8, issue 13's "done when"): a generated tape through the real
pipeline and the scoring worker, its loans scored with factors and routed, the borderline ones in
the queue; one case assigned, started and approved with conditions, one decided against the
model and the override approved by a second person; the SLA job, past the deadlines, breaches and
escalates the cases still open and tells the senior analysts; those cases are decided with the
model, the rest auto-decided; then the decision tape is written, the run is `decided` (in the API,
its outputs and its archive) with its four reports untouched, its drift is reported, and a
rebuild gives the same checksum.

The five workers (ingest, rules, pricing, reporting, scoring) run as processes on this module's
topics and database; the API, the projector and the review jobs (ticked by the test) run here.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import PASSWORD, RunningProjector, bearer, gateway_settings, login

from contracts.runs import REPORT_KEYS
from contracts.scoring import FEATURES
from services.cli.stack import supervisor
from services.gateway.app import create_app
from services.gateway.db import connect, migrate
from services.gateway.identity import service as identity
from services.gateway.projector.consumer import Projector
from services.gateway.projector.maintenance import checksum, rebuild
from services.gateway.review.jobs import ReviewJobs
from services.gateway.settings import GatewaySettings
from services.ingest.tapegen import generate_tape
from services.reporting.decision_tape import DECISION_TAPE_COLUMNS
from tests.net import answers, free_port

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[3]
WORKERS = {
    "ingest": "services.ingest.main",
    "rules": "services.rules.main",
    "pricing": "services.pricing.main",
    "reporting": "services.reporting.main",
    "scoring": "services.scoring.main",
}
READY_SECONDS = {"scoring": 600.0}
WAIT_SECONDS = 240
LOANS = 80
SEED = 20261207
# Where the model leans (services/gateway/review/decisions.py): the middle of the thresholds.
LEANS_APPROVE_FROM = (850 + 600) / 2
JUSTIFICATION = (
    "Verified employment history and reserves outweigh the model's view of this borrower."
)


@dataclass(frozen=True)
class Desk:
    client: httpx.AsyncClient
    settings: GatewaySettings
    jobs: ReviewJobs
    projector: RunningProjector
    admin: dict[str, str]
    analyst: dict[str, str]
    senior: dict[str, str]
    sales: dict[str, str]
    ids: dict[str, str]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("credit-review")


@pytest.fixture(scope="module")
def settings(
    module_database_url: str, kafka_bootstrap_servers: str, module_topic_prefix: str, root: Path
) -> GatewaySettings:
    return gateway_settings(
        module_database_url,
        kafka_bootstrap_servers,
        module_topic_prefix,
        root / "storage",
        upload_max_bytes=4 * 1024 * 1024,
        run_wait_poll_seconds=0.25,
        review_wait_seconds=60,
        review_jobs_enabled=False,
    )


@pytest.fixture(scope="module")
def workers(settings: GatewaySettings, root: Path) -> Iterator[None]:
    """The pipeline and the scoring worker as processes (scoring trains a small first model)."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "TOPIC_PREFIX": settings.topic_prefix,
        "DATABASE_URL": settings.database_dsn,
        "STORAGE_TYPE": "local",
        "STORAGE_ROOT": str(settings.storage_root),
        "INGEST_STATE_DIR": str(root / "ingest-state"),
        "SCORING_STATE_DIR": str(root / "scoring-state"),
        "SCORING_BOOTSTRAP_SAMPLES": "2000",
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    logs = root / "logs"
    spawned: dict[str, supervisor.Spawned] = {}
    ports = {name: free_port() for name in WORKERS}
    try:
        for name, module in WORKERS.items():
            worker_env = {**env, f"{name.upper()}_HTTP_PORT": str(ports[name])}
            spawned[name] = supervisor.spawn(
                [sys.executable, "-m", module], logs / f"{name}.log", env=worker_env, cwd=PROJECT
            )
        for name in WORKERS:
            url = f"http://127.0.0.1:{ports[name]}/health/ready"
            ready = READY_SECONDS.get(name, 120.0)
            if not supervisor.wait_until(lambda url=url: answers(url), timeout=ready):
                pytest.fail(f"{name} never became ready:\n{supervisor.tail(logs / f'{name}.log')}")
        yield
    finally:
        for process in spawned.values():
            supervisor.stop(process)


@pytest.fixture(scope="module")
async def desk(settings: GatewaySettings, workers: None) -> AsyncIterator[Desk]:  # noqa: ARG001
    """The API and the projector in process, a credit desk's users, the review jobs."""
    await migrate(settings)
    projector = RunningProjector(settings)
    await projector.start()
    app = create_app(settings)
    try:
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://gateway", timeout=WAIT_SECONDS + 30
            ) as client:
                ids: dict[str, str] = {}
                async with app.state.sessionmaker() as session:
                    await identity.create_team(session, "Team A", "team-a")
                    for username, role, team in (
                        ("analyst1", "analyst", None),
                        ("senior1", "senior_analyst", None),
                        ("sales_a", "sales_team", "team-a"),
                    ):
                        user = await identity.create_user(
                            session,
                            username=username,
                            email=f"{username}@example.com",
                            role=role,  # type: ignore[arg-type]
                            password=PASSWORD,
                            team_id=team,
                        )
                        ids[username] = str(user.id)
                admin = bearer(await login(client, "root"))
                ids["root"] = str(ok(await client.get("/api/auth/me", headers=admin))["id"])
                yield Desk(
                    client=client,
                    settings=settings,
                    jobs=ReviewJobs(app.state.sessionmaker, app.state.publisher, settings),
                    projector=projector,
                    admin=admin,
                    analyst=bearer(await login(client, "analyst1")),
                    senior=bearer(await login(client, "senior1")),
                    sales=bearer(await login(client, "sales_a")),
                    ids=ids,
                )
    finally:
        await projector.stop()


async def count(settings: GatewaySettings, query: str, *args: Any) -> int:
    conn = await connect(settings)
    try:
        return int(await conn.fetchval(query, *args))
    finally:
        await conn.close()


async def eventually(probe: Any, done: Any, timeout: float = WAIT_SECONDS) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if done(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.3)


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


async def act(desk: Desk, case_id: str, action: str, headers: dict[str, str]) -> dict:
    return ok(await desk.client.post(f"/api/review/cases/{case_id}/{action}", headers=headers))


async def decide(desk: Desk, case_id: str, body: dict) -> tuple[dict, str]:
    """Decide the case as whoever holds it (the SLA job's auto-assignment may have given it to
    the senior analyst), or as the analyst who takes it; the answer and the decider's id."""
    case = ok(await desk.client.get(f"/api/review/cases/{case_id}", headers=desk.analyst))
    if case["status"] == "pending":
        await act(desk, case_id, "assign", desk.analyst)
        holder = desk.ids["analyst1"]
    else:
        holder = case["assignee"]
    headers = desk.analyst if holder == desk.ids["analyst1"] else desk.senior
    await act(desk, case_id, "start", headers)
    url = f"/api/review/cases/{case_id}/decision"
    return ok(await desk.client.post(url, json=body, headers=headers)), holder


def leans_approve(case: dict) -> bool:
    return case["score"] >= LEANS_APPROVE_FROM


def with_the_model(case: dict) -> dict:
    if leans_approve(case):
        return {"outcome": "approve", "terms": "Standard terms"}
    return {"outcome": "decline", "reasoning": "Agrees with the model: the risk is too high"}


async def test_a_run_is_scored_reviewed_decided_and_written_to_the_decision_tape(
    desk: Desk, root: Path
) -> None:
    client, admin = desk.client, desk.admin
    tape = root / "tape.csv"
    generate_tape(tape, LOANS, SEED)
    folder = f"credit-{uuid4().hex[:6]}"
    upload = await client.post(
        "/api/files/upload",
        params={"path": folder},
        files={"file": (tape.name, tape.read_bytes())},
        headers=admin,
    )
    assert upload.status_code == 201, upload.text
    run = ok(
        await client.post(
            "/api/pipeline/run",
            params={"wait": WAIT_SECONDS},
            json={"pdate": "2026-12-07", "irr_target": "8.05", "folder": folder},
            headers=admin,
        )
    )
    assert run["status"] == "completed", run
    run_id, total = run["run_id"], run["total_loans"]
    reports = {
        key: (
            await client.get(f"/api/runs/{run_id}/notebook-outputs/{key}/download", headers=admin)
        ).content
        for key in REPORT_KEYS
    }

    # Every loan scored (with its factors), then every case opened and every auto decision
    # recorded by the review job.
    scored = "SELECT count(*) FROM gateway.loan_scores WHERE run_id = $1"
    assert (
        await eventually(lambda: count(desk.settings, scored, run_id), lambda n: n >= total)
        == total
    )
    reviews = await count(
        desk.settings,
        "SELECT count(*) FROM gateway.loan_scores WHERE run_id = $1 "
        "AND routing_decision = 'human_review'",
        run_id,
    )
    assert reviews >= 3, "the tape must route at least three loans to a person"

    async def ticked() -> tuple[int, int]:
        await desk.jobs.tick()
        cases = await count(
            desk.settings, "SELECT count(*) FROM gateway.review_cases WHERE run_id = $1", run_id
        )
        autos = await count(
            desk.settings, "SELECT count(*) FROM gateway.review_decisions WHERE run_id = $1", run_id
        )
        return cases, autos

    assert await eventually(ticked, lambda found: found == (reviews, total - reviews)) == (
        reviews,
        total - reviews,
    )

    queue = ok(await client.get("/api/review/queue", params={"limit": 1000}, headers=desk.analyst))
    cases = [case for case in queue["items"] if case["run_id"] == run_id]
    assert len(cases) == reviews
    assert any(case["routing_reason"] == "borderline_score" for case in cases)
    assert all(case["status"] == "pending" for case in cases)

    approving = [case for case in cases if leans_approve(case)]
    assert approving, "a case the model leans to approve is needed for the approval with conditions"
    first = approving[0]
    second = next(case for case in cases if case["case_id"] != first["case_id"])
    detail = ok(await client.get(f"/api/review/cases/{first['case_id']}", headers=desk.analyst))
    score = detail["score_detail"]
    assert score["positive_factors"] or score["negative_factors"]
    assert all(factor["description"] for factor in score["positive_factors"])

    # One case approved with conditions, in line with the model.
    conditions = [
        {"condition_type": "documentation", "description": "Two months of bank statements"},
        {"condition_type": "guarantor", "description": "Signed parental guarantee"},
    ]
    approved, approver = await decide(
        desk, first["case_id"], {"outcome": "approve_with_conditions", "conditions": conditions}
    )
    assert approved["status"] == "decided"

    # One decided against the model: an override, final once a second person approves it.
    against = (
        {"outcome": "decline", "reasoning": "Income could not be verified"}
        if leans_approve(second)
        else {"outcome": "approve", "terms": "Standard terms"}
    )
    body = {**against, "justification": JUSTIFICATION}
    pending, overrider = await decide(desk, second["case_id"], body)
    assert pending["status"] == "override_pending"
    # A second person approves: the senior analyst, or the admin when the senior decided it.
    second_person = desk.senior if overrider != desk.ids["senior1"] else desk.admin
    overrides = ok(await client.get("/api/review/pending-overrides", headers=second_person))
    override = next(item for item in overrides if item["case_id"] == second["case_id"])
    url = f"/api/review/decisions/{override['decision_id']}/approve-override"
    assert (ok(await client.post(url, headers=second_person)))["status"] == "decided"

    # Not decided while a case is still open.
    run = ok(await client.get(f"/api/runs/{run_id}", headers=admin))
    assert run["status"] == "completed"

    # The other cases are still open. The SLA job, its clock an hour past every deadline: each
    # open case is breached and escalated (once), the senior analysts are told, and the cases are
    # auto-assigned to the reviewers holding the fewest.
    rest = [case for case in cases if case["case_id"] not in (first["case_id"], second["case_id"])]
    late = max(datetime.fromisoformat(case["sla_deadline"]) for case in rest) + timedelta(hours=1)
    await desk.jobs.tick(late)
    await desk.jobs.tick(late)  # a second tick raises nothing new

    async def told() -> list[dict]:
        page = await client.get("/api/notifications", params={"limit": 500}, headers=desk.senior)
        ours = {case["case_id"] for case in cases}
        return [item for item in ok(page)["items"] if item["case_id"] in ours]

    def counted(found: list[dict]) -> tuple[int, int]:
        kinds = [item["kind"] for item in found]
        return kinds.count("escalation"), kinds.count("sla_breach")

    notices = await eventually(told, lambda found: counted(found) == (len(rest), len(rest)))
    assert counted(notices) == (len(rest), len(rest))
    assert {item["case_id"] for item in notices} == {case["case_id"] for case in rest}
    assert all(item["run_id"] == run_id for item in notices)
    escalated = ok(await client.get(f"/api/review/cases/{rest[0]['case_id']}", headers=desk.senior))
    assert "escalate" in [event["action"] for event in escalated["history"]]

    # The rest decided with the model: the auto-assigned ones first, by whoever holds them.
    queued = ok(await client.get("/api/review/queue", params={"limit": 1000}, headers=desk.senior))
    held = {case["case_id"]: case["status"] for case in queued["items"]}
    for case in sorted(rest, key=lambda case: held.get(case["case_id"]) == "pending"):
        decision, _ = await decide(desk, case["case_id"], with_the_model(case))
        assert decision["status"] == "decided"

    # Every loan has its final decision: reporting writes the tape and the run is decided.
    decided = await eventually(
        lambda: client.get(f"/api/runs/{run_id}", headers=admin),
        lambda response: response.json()["status"] == "decided",
    )
    decided = decided.json()
    assert decided["status"] == "decided", decided
    assert decided["decided_at"] is not None
    outputs = ok(await client.get(f"/api/runs/{run_id}/notebook-outputs", headers=admin))
    assert [item["key"] for item in outputs] == sorted([*REPORT_KEYS, "decision_tape"])
    download = f"/api/runs/{run_id}/notebook-outputs/decision_tape/download"
    body = (await client.get(download, headers=admin)).content
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    assert tuple(rows[0]) == DECISION_TAPE_COLUMNS
    assert body.endswith(b"\r\n")
    by_loan = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}

    autos = await count(
        desk.settings,
        "SELECT count(*) FROM gateway.loan_scores WHERE run_id = $1 "
        "AND routing_decision = 'auto_approve'",
        run_id,
    )
    approvals = {
        case["seller_loan_number"]
        for case in cases
        if case["case_id"] == first["case_id"]
        or (case["case_id"] == second["case_id"] and against["outcome"] == "approve")
        or (case["case_id"] not in (first["case_id"], second["case_id"]) and leans_approve(case))
    }
    assert len(by_loan) == autos + len(approvals)
    assert approvals <= set(by_loan)
    row = by_loan[first["seller_loan_number"]]
    assert row["decision_type"] == "analyst_approve_with_conditions"
    assert row["conditions"] == (
        "documentation: Two months of bank statements; guarantor: Signed parental guarantee"
    )
    assert row["decided_by"] == approver
    assert row["disposition"] in ("to_purchase", "projected")
    if against["outcome"] == "approve":
        approved_by = by_loan[second["seller_loan_number"]]["override_approved_by"]
        assert approved_by == (
            desk.ids["senior1"] if second_person == desk.senior else desk.ids["root"]
        )
    else:
        assert second["seller_loan_number"] not in by_loan
    assert {row["decision_type"] for row in by_loan.values()} <= {
        "auto_approve",
        "analyst_approve",
        "analyst_approve_with_conditions",
    }

    # The four §3 reports are untouched; the tape is archived beside them.
    for key in REPORT_KEYS:
        url = f"/api/runs/{run_id}/notebook-outputs/{key}/download"
        assert (await client.get(url, headers=admin)).content == reports[key]
    archive = ok(await client.get(f"/api/runs/{run_id}/archive", headers=admin))
    assert "output/decision_tape.csv" in [item["path"] for item in archive["output"]]

    # Drift is reported for the run, against the served model's training data.
    model = ok(await client.get("/api/ml/model", headers=desk.analyst))
    drift = ok(await client.get("/api/ml/drift", params={"run_id": run_id}, headers=desk.analyst))
    assert drift["model_version"] == model["model_version"]
    assert drift["loans"] == total
    assert [item["feature"] for item in drift["features"]] == list(FEATURES)
    assert all(float(item["psi"]) >= 0 for item in drift["features"])
    assert set(model["metrics"]) == {"auc", "gini", "ks", "precision", "recall", "f1"}
    # Another team's sales user does not learn the run exists.
    hidden = await client.get("/api/ml/drift", params={"run_id": run_id}, headers=desk.sales)
    assert hidden.status_code == 404

    # A rebuild from the log restores the same read models: the run is decided again.
    await desk.projector.stop()
    conn = await connect(desk.settings)
    try:
        caught_up = Projector(desk.settings, conn)
        await caught_up.start()
        await caught_up.catch_up(timeout=120)
        await caught_up.stop()
    finally:
        await conn.close()
    before = await checksum(desk.settings)
    await rebuild(desk.settings, timeout=180)
    after = await checksum(desk.settings)
    await desk.projector.start()
    assert after.digest == before.digest
    assert after.tables == before.tables
    again = ok(await client.get(f"/api/runs/{run_id}", headers=admin))
    assert (again["status"], again["decided_at"]) == ("decided", decided["decided_at"])
