"""The review SLA, notifications and team webhooks through the API, with a real broker, projector
and database (SPEC §8), on a clock the test drives (no sleeping): a warning two hours before the
deadline, auto-assignment near it, the breach with its escalation, each once however often the
jobs run; notifications per user with mark-read and team scoping; an override rejection that
notifies the analyst; a signed webhook retried until a real receiver accepts it; and a rebuild
that restores all of it with the same checksum."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from asgi_lifespan import LifespanManager
from conftest import (
    PASSWORD,
    RunningProjector,
    _create_database,
    _drop_database,
    bearer,
    gateway_settings,
    login,
    publish_runs,
)
from fastapi import FastAPI
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.kafka import KafkaPublisher
from services.gateway.app import create_app
from services.gateway.db import alembic_config, connect, migrate
from services.gateway.identity import service
from services.gateway.notifications.domain import verify
from services.gateway.notifications.repository import override_outcomes_query
from services.gateway.projector.consumer import Projector
from services.gateway.projector.maintenance import checksum, rebuild, wait_caught_up
from services.gateway.review.jobs import ReviewJobs
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.gateway_events import RunScenario
from tests.unit.gateway.review_events import scored_messages

pytestmark = pytest.mark.integration
SECRET = "team-a-webhook-secret"
FAILURES_BEFORE_SUCCESS = 2


class Receiver(BaseHTTPRequestHandler):
    """A team's webhook endpoint: checks each signature, answers 503 to the first tries of every
    delivery, then 200."""

    tries: Counter[str]
    accepted: list[dict[str, Any]]
    bad_signatures: int

    def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        assert isinstance(server, ReceiverServer)
        if not verify(SECRET, body, self.headers.get("X-Loan-Engine-Signature", "")):
            server.bad_signatures += 1
            self.send_response(401)
        else:
            delivery = self.headers["X-Loan-Engine-Delivery"]
            server.tries[delivery] += 1
            if server.tries[delivery] <= FAILURES_BEFORE_SUCCESS:
                self.send_response(503)
            else:
                server.accepted.append(json.loads(body))
                self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


class ReceiverServer(ThreadingHTTPServer):
    """The receiver's socket, and what it saw."""

    request_queue_size = 64

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), Receiver)
        self.tries: Counter[str] = Counter()
        self.accepted: list[dict[str, Any]] = []
        self.bad_signatures = 0


@pytest.fixture(scope="module")
def receiver() -> Iterator[ReceiverServer]:
    """A real HTTP receiver on a loopback port of this module's block (49000-49099)."""
    server = None
    for port in range(49010, 49100):
        try:
            server = ReceiverServer(port)
            break
        except OSError:
            continue
    assert server is not None, "no free port in 49010-49099"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Desk:
    """A credit desk on a driven clock: its users, one team's scored run, the jobs."""

    client: httpx.AsyncClient
    app: FastAPI
    settings: GatewaySettings
    projector: RunningProjector
    jobs: ReviewJobs
    headers: dict[str, dict[str, str]]
    ids: dict[str, str]
    run: RunScenario
    opened_at: datetime

    async def tick(self, at: timedelta) -> None:
        """Run every job once at `opened_at + at`, then wait for the fold."""
        await self.jobs.tick(self.opened_at + at)
        await self.caught_up()

    async def caught_up(self) -> None:
        conn = await connect(self.settings)
        try:
            await wait_caught_up(self.settings, conn, timeout=120)
        finally:
            await conn.close()

    async def get(self, user: str, path: str, **params: Any) -> Any:
        response = await self.client.get(path, headers=self.headers[user], params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, user: str, path: str, body: Any = None) -> httpx.Response:
        return await self.client.post(path, headers=self.headers[user], json=body)

    async def notifications(self, user: str, **params: Any) -> dict[str, Any]:
        return await self.get(user, "/api/notifications", limit=500, **params)

    async def cases(self, **params: Any) -> list[dict[str, Any]]:
        return (await self.get("root", "/api/review/queue", limit=1000, **params))["items"]


async def fetch(settings: GatewaySettings, query: str, *args: Any) -> list[Any]:
    conn = await connect(settings)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def desk(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Desk]:
    settings = gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        module_topic_prefix,
        tmp_path_factory.mktemp("sla-storage"),
        review_wait_seconds=60,
        review_jobs_enabled=False,
        review_auto_assign_hours=1,
        notification_lookback_hours=1_000_000,
        webhook_backoff_seconds=30,
    )
    await migrate(settings)
    projector = RunningProjector(settings)
    await projector.start()
    run = RunScenario(loans=60, batch_size=20, sales_team_id="team-a")
    await publish_runs(settings, [run])
    async with KafkaPublisher(settings) as publisher:
        for topic, key, batch in scored_messages(run):
            await publisher.publish(topic, key, batch)
    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            ids: dict[str, str] = {}
            async with application.state.sessionmaker() as session:
                await service.create_team(session, "Team A", "team-a")
                await service.create_team(session, "Team B", "team-b")
                for username, role, team in (
                    ("analyst1", "analyst", None),
                    ("analyst2", "analyst", None),
                    ("senior1", "senior_analyst", None),
                    ("sales_a", "sales_team", "team-a"),
                    ("sales_b", "sales_team", "team-b"),
                ):
                    user = await service.create_user(
                        session,
                        username=username,
                        email=f"{username}@example.com",
                        role=role,  # type: ignore[arg-type]
                        password=PASSWORD,
                        team_id=team,
                    )
                    ids[username] = str(user.id)
            headers = {
                name: bearer(await login(client, name))
                for name in ("root", "analyst1", "analyst2", "senior1", "sales_a", "sales_b")
            }
            jobs = ReviewJobs(application.state.sessionmaker, application.state.publisher, settings)
            opened_at = datetime.now(UTC)
            desk = Desk(
                client, application, settings, projector, jobs, headers, ids, run, opened_at
            )
            await desk.tick(timedelta(0))
            yield desk
    await projector.stop()


@pytest.fixture(scope="module")
async def cases(desk: Desk) -> list[dict[str, Any]]:
    """The run's open cases (opened at `opened_at` by the fixture's first tick)."""
    found = await desk.cases()
    assert len(found) >= 8, "the scenario routes enough loans to review"
    return found


async def test_nothing_is_due_long_before_the_deadline(desk: Desk, cases: list[dict]) -> None:
    await desk.tick(timedelta(hours=5))
    after = await desk.cases()
    assert len(after) == len(cases)
    assert not [case for case in after if case["sla_warned_at"] or case["assignee"]]
    assert (await desk.notifications("senior1"))["total"] == 0


async def test_every_open_case_is_warned_once_two_hours_before_its_deadline(
    desk: Desk, cases: list[dict]
) -> None:
    await desk.tick(timedelta(hours=6, minutes=1))
    await desk.tick(timedelta(hours=6, minutes=2))  # a second run (or replica) adds nothing
    warned = await fetch(
        desk.settings,
        "SELECT case_id FROM gateway.review_actions WHERE action = 'sla-warning'",
    )
    assert sorted(str(row[0]) for row in warned) == sorted(case["case_id"] for case in cases)
    page = await desk.notifications("senior1")
    assert Counter(item["kind"] for item in page["items"]) == {"sla_warning": len(cases)}
    assert page["unread"] == len(cases)
    # Nobody held a case: the warnings went to the senior analysts, not to every analyst.
    assert (await desk.notifications("analyst1"))["total"] == 0
    detail = await desk.get("root", f"/api/review/cases/{cases[0]['case_id']}")
    marks = [event for event in detail["history"] if event["action"] == "sla-warning"]
    assert len(marks) == 1 and marks[0]["actor_role"] == "system" and marks[0]["applied"]


async def test_pending_cases_near_their_deadline_are_auto_assigned_within_the_workload_limit(
    desk: Desk, cases: list[dict]
) -> None:
    taken = await desk.post("analyst1", f"/api/review/cases/{cases[0]['case_id']}/assign")
    assert taken.status_code == 200, taken.text
    await desk.tick(timedelta(hours=7, minutes=1))
    await desk.tick(timedelta(hours=7, minutes=2))
    after = await desk.cases()
    load = Counter(case["assignee"] for case in after if case["assignee"])
    reviewers = {desk.ids[name] for name in ("analyst1", "analyst2", "senior1")}
    assert set(load) <= reviewers
    assert max(load.values()) <= 5
    assert sum(load.values()) == min(len(cases), 15)
    assert all(case["status"] == "pending" for case in after if case["assignee"] is None)
    automatic = await fetch(
        desk.settings,
        "SELECT count(*) FROM gateway.review_actions WHERE action = 'assign' "
        "AND actor_role = 'system' AND applied",
    )
    assert automatic[0][0] == min(len(cases), 15) - 1


async def test_a_breach_notifies_the_assignee_and_escalates_to_the_senior_analysts_once(
    desk: Desk, cases: list[dict], receiver: ReceiverServer
) -> None:
    webhook = await desk.client.put(
        "/api/admin/teams/team-a/webhook",
        headers=desk.headers["root"],
        json={"url": f"http://127.0.0.1:{receiver.server_port}/hooks", "secret": SECRET},
    )
    assert webhook.status_code == 200, webhook.text
    assert "secret" not in webhook.json() and webhook.json()["secret_set"] is True
    await desk.tick(timedelta(hours=8, minutes=1))
    await desk.tick(timedelta(hours=8, minutes=2))
    after = await desk.cases()
    assert len(after) == len(cases)
    assert all(case["sla_breached_at"] and case["escalated_at"] for case in after)
    marks = await fetch(
        desk.settings,
        "SELECT action, count(*) FROM gateway.review_actions "
        "WHERE action IN ('sla-breach', 'escalate') AND applied GROUP BY action",
    )
    assert {row[0]: row[1] for row in marks} == {
        "sla-breach": len(cases),
        "escalate": len(cases),
    }
    senior = Counter(item["kind"] for item in (await desk.notifications("senior1"))["items"])
    assert senior["sla_breach"] == len(cases) and senior["escalation"] == len(cases)
    mine = [case for case in after if case["assignee"] == desk.ids["analyst1"]]
    analyst = (await desk.notifications("analyst1"))["items"]
    breaches = {item["case_id"] for item in analyst if item["kind"] == "sla_breach"}
    assert breaches == {case["case_id"] for case in mine} != set()
    assert not [item for item in analyst if item["kind"] == "escalation"]


async def test_a_user_marks_one_notification_read_then_all(desk: Desk) -> None:
    unread = await desk.notifications("analyst1", unread="true")
    assert unread["total"] == unread["unread"] > 1
    first = unread["items"][0]["notification_id"]
    read = await desk.post("analyst1", f"/api/notifications/{first}/read")
    assert read.status_code == 200 and read.json()["read"] is True
    left = await desk.notifications("analyst1", unread="true")
    assert left["unread"] == unread["unread"] - 1
    assert first not in {item["notification_id"] for item in left["items"]}
    other = await desk.post("analyst2", f"/api/notifications/{first}/read")
    assert other.status_code == 404  # not theirs
    everything = await desk.post("analyst1", "/api/notifications/read-all")
    assert everything.status_code == 200 and everything.json()["unread"] == 0
    page = await desk.notifications("analyst1")
    assert page["unread"] == 0 and all(item["read"] for item in page["items"])


async def test_sales_users_see_their_own_teams_run_notifications_only(desk: Desk) -> None:
    await desk.tick(timedelta(hours=8, minutes=3))
    own = (await desk.notifications("sales_a"))["items"]
    assert [(item["kind"], item["run_id"]) for item in own] == [
        ("run_completed", str(desk.run.run_id))
    ]
    assert (await desk.notifications("sales_b"))["total"] == 0
    assert (await desk.client.get("/api/notifications")).status_code == 401


async def test_an_override_rejection_notifies_the_analyst_and_reverts_the_case(
    desk: Desk,
) -> None:
    mine = await desk.cases(analyst=desk.ids["analyst1"])
    case = mine[0]
    cid = case["case_id"]
    if case["status"] == "assigned":
        assert (await desk.post("analyst1", f"/api/review/cases/{cid}/start")).status_code == 200
    justification = "The borrower's verified reserves cover two years of payments comfortably."
    against = (
        {"outcome": "decline", "reasoning": "Reserves unverified", "justification": justification}
        if case["score"] >= 725
        else {"outcome": "approve", "terms": "Standard terms", "justification": justification}
    )
    decided = await desk.post("analyst1", f"/api/review/cases/{cid}/decision", against)
    assert decided.status_code == 200, decided.text
    decision = decided.json()["decisions"][-1]["decision_id"]
    rejected = await desk.post(
        "senior1",
        f"/api/review/decisions/{decision}/reject-override",
        {"notes": "Get the bank statements first"},
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "in_progress"
    await desk.tick(timedelta(hours=8, minutes=4))
    await desk.tick(timedelta(hours=8, minutes=5))
    notices = [
        item
        for item in (await desk.notifications("analyst1", unread="true"))["items"]
        if item["kind"] == "override_rejected"
    ]
    assert len(notices) == 1
    assert notices[0]["decision_id"] == decision
    assert "Get the bank statements first" in notices[0]["message"]


async def test_sla_metrics_report_on_time_decisions_warnings_and_escalations_by_priority(
    desk: Desk, cases: list[dict]
) -> None:
    mine = [
        case
        for case in await desk.cases(analyst=desk.ids["analyst2"])
        if case["status"] in ("assigned", "in_progress")
    ]
    cid, score = mine[0]["case_id"], mine[0]["score"]
    if mine[0]["status"] == "assigned":
        assert (await desk.post("analyst2", f"/api/review/cases/{cid}/start")).status_code == 200
    with_model = (
        {"outcome": "approve", "terms": "Standard terms"}
        if score >= 725
        else {"outcome": "decline", "reasoning": "Debt load too high for the income shown"}
    )
    decided = await desk.post("analyst2", f"/api/review/cases/{cid}/decision", with_model)
    assert decided.status_code == 200, decided.text
    # A window around the driven clock's opening time.
    window = {
        "since": (desk.opened_at - timedelta(hours=1)).isoformat(),
        "until": (desk.opened_at + timedelta(days=1)).isoformat(),
    }
    metrics = await desk.get("root", "/api/review/sla-metrics", **window)
    assert metrics["cases"] == len(cases)
    # Decided by the wall clock, hours before the deadline the driven clock passed.
    assert (metrics["decided"], metrics["on_time"], metrics["late"]) == (1, 1, 0)
    assert metrics["on_time_rate"] == "1.0000"
    assert metrics["open"] == len(cases) - 1
    assert (metrics["warnings"], metrics["escalations"]) == (len(cases), len(cases))
    assert metrics["time_to_decision_seconds"]["max"] >= 0
    assert sum(level["cases"] for level in metrics["by_priority"].values()) == len(cases)
    assert (await desk.get("sales_b", "/api/review/sla-metrics", **window))["cases"] == 0
    assert (await desk.get("sales_a", "/api/review/sla-metrics", **window))["cases"] == len(cases)
    assert (await desk.get("root", "/api/review/sla-metrics"))["until"]  # defaults: 30 days
    backwards = await desk.client.get(
        "/api/review/sla-metrics",
        headers=desk.headers["root"],
        params={"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"},
    )
    assert backwards.status_code == 400
    seconds = await desk.client.get(
        "/api/review/sla-metrics", headers=desk.headers["root"], params={"until": "0.5"}
    )
    assert seconds.status_code == 422  # a number is not read as seconds since 1970


async def test_the_team_webhook_gets_every_notification_signed_after_retries(
    desk: Desk, receiver: ReceiverServer
) -> None:
    step = timedelta(hours=8, minutes=10)
    for _ in range(6):  # 30 s, then 60 s of back-off: three tries each
        await desk.tick(step)
        step += timedelta(minutes=2)
    deliveries = await desk.get("root", "/api/admin/teams/team-a/webhook-deliveries", limit=500)
    team_notes = await fetch(
        desk.settings,
        "SELECT notification_id FROM gateway.notifications WHERE team_id = 'team-a' "
        "AND occurred_at >= (SELECT created_at FROM gateway.team_webhooks)",
    )
    assert len(deliveries) == len(team_notes) > 0
    assert receiver.bad_signatures == 0
    for delivery in deliveries:
        assert delivery["state"] == "delivered", delivery
        assert all(t["error"] is None or t["error"] == "HTTP 503" for t in delivery["tries"]), (
            delivery
        )
        assert [t["status_code"] for t in delivery["tries"]] == [503, 503, 200]
        assert delivery["tries"][0]["error"] == "HTTP 503"
    accepted = {body["notification_id"] for body in receiver.accepted}
    assert accepted == {str(row[0]) for row in team_notes}
    assert {body["team_id"] for body in receiver.accepted} == {"team-a"}
    # Delivered is delivered: later runs POST nothing again.
    posts = sum(receiver.tries.values())
    await desk.tick(step + timedelta(hours=1))
    assert sum(receiver.tries.values()) == posts


async def test_a_rebuild_restores_sla_marks_and_notifications_with_their_read_state(
    desk: Desk,
) -> None:
    await desk.projector.stop()
    conn = await connect(desk.settings)
    try:
        projector = Projector(desk.settings, conn)
        await projector.start()
        await projector.catch_up(timeout=120)
        await projector.stop()
    finally:
        await conn.close()
    before = await checksum(desk.settings)
    for table in ("notifications", "notification_reads", "notification_read_marks"):
        assert before.tables[table]["rows"] > 0, table
    deliveries = await fetch(desk.settings, "SELECT count(*) FROM gateway.webhook_deliveries")
    await rebuild(desk.settings, timeout=120)
    after = await checksum(desk.settings)
    assert after.tables == before.tables
    assert after.digest == before.digest
    # The delivery log is not a read model: a rebuild neither clears nor re-sends it.
    assert await fetch(desk.settings, "SELECT count(*) FROM gateway.webhook_deliveries") == (
        deliveries
    )
    await desk.projector.start()


async def test_webhooks_are_for_admins_and_need_a_long_secret_and_a_known_team(
    desk: Desk,
) -> None:
    body = {"url": "http://127.0.0.1:49099/x", "secret": "x" * 16}
    denied = await desk.client.put(
        "/api/admin/teams/team-b/webhook", headers=desk.headers["senior1"], json=body
    )
    assert denied.status_code == 403
    short = await desk.client.put(
        "/api/admin/teams/team-b/webhook",
        headers=desk.headers["root"],
        json={**body, "secret": "short"},
    )
    assert short.status_code == 422
    unknown = await desk.client.put(
        "/api/admin/teams/nobody/webhook", headers=desk.headers["root"], json=body
    )
    assert unknown.status_code == 404
    log = await desk.client.get(
        "/api/admin/teams/nobody/webhook-deliveries", headers=desk.headers["root"]
    )
    assert log.status_code == 404
    assert (
        await desk.client.delete("/api/admin/teams/team-b/webhook", headers=desk.headers["root"])
    ).status_code == 404


async def test_the_sla_migration_downgrades_to_review_cases_and_upgrades_again(
    database_url: str, tmp_path: Path
) -> None:
    url = await _create_database(database_url)
    try:
        settings = gateway_settings(url, "127.0.0.1:1", "unused.", tmp_path)
        await migrate(settings)
        engine = create_async_engine(settings.database_dsn)

        def downgrade(connection: Connection) -> None:
            config = alembic_config(settings.database_dsn)
            config.attributes["connection"] = connection
            command.downgrade(config, "0020_review_cases")

        try:
            async with engine.begin() as connection:
                await connection.run_sync(downgrade)
        finally:
            await engine.dispose()
        gone = await fetch(settings, "SELECT to_regclass('gateway.notifications')")
        assert gone[0][0] is None
        await migrate(settings)
        back = await fetch(settings, "SELECT to_regclass('gateway.webhook_attempts')")
        assert back[0][0] is not None
    finally:
        await _drop_database(database_url, url)


async def test_the_override_notification_job_reads_the_overrides_index_not_every_decision(
    desk: Desk,
) -> None:
    # At 3.3 million decisions its scan took 285 ms of three PostgreSQL processes every tick.
    query = override_outcomes_query(desk.opened_at - timedelta(days=1), 100)
    compiled = query.compile(dialect=asyncpg_dialect(), compile_kwargs={"render_postcompile": True})
    conn = await connect(desk.settings)
    try:
        await conn.execute("ANALYZE gateway.review_decisions")
        await conn.execute("SET enable_seqscan = off")
        plan = await conn.fetchval(
            f"EXPLAIN (FORMAT JSON) {compiled}",
            *(compiled.params[name] for name in compiled.positiontup or ()),
        )
    finally:
        await conn.close()
    assert "review_decisions_overrides" in plan, plan
