"""Exception triage and the audit log through the API, with a real broker, projector and database:
the lifecycle, four-eyes waivers, bulk actions, team scoping, the role senior_analyst, audit
entries with PII masked, and a rebuild that gives the same checksum."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import PASSWORD, RunningProjector, bearer, gateway_settings, login, publish_runs

from services.gateway.app import create_app
from services.gateway.db import connect, migrate
from services.gateway.identity import service
from services.gateway.projector.consumer import Projector
from services.gateway.projector.maintenance import checksum, rebuild
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.gateway_events import RunScenario

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Desk:
    """The users of a loan desk and two teams' runs, projected."""

    client: httpx.AsyncClient
    settings: GatewaySettings
    projector: RunningProjector
    admin: dict[str, str]
    analyst: dict[str, str]
    analyst2: dict[str, str]
    senior: dict[str, str]
    sales_a: dict[str, str]
    sales_b: dict[str, str]
    ids: dict[str, str]
    run_a: RunScenario
    run_b: RunScenario


@pytest.fixture(scope="module")
async def desk(
    fresh_database_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Desk]:
    settings = gateway_settings(
        fresh_database_url,
        kafka_bootstrap_servers,
        topic_prefix,
        tmp_path_factory.mktemp("triage-storage"),
        triage_wait_seconds=60,
    )
    await migrate(settings)
    projector = RunningProjector(settings)
    await projector.start()
    run_a = RunScenario(loans=120, batch_size=20, sales_team_id="team-a")
    run_b = RunScenario(loans=40, batch_size=20, sales_team_id="team-b")
    await publish_runs(settings, [run_a, run_b])
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
                    ("sales.a@example.com", "sales_team", "team-a"),
                    ("sales_b", "sales_team", "team-b"),
                ):
                    user = await service.create_user(
                        session,
                        username=username,
                        email=f"{username.split('@')[0]}@example.com",
                        role=role,  # type: ignore[arg-type]
                        password=PASSWORD,
                        team_id=team,
                    )
                    ids[username] = str(user.id)
            admin = bearer(await login(client, "root"))
            await _wait_for(
                lambda: _count(client, admin, run_a.run_id, run_b.run_id), lambda n: n >= 2
            )
            yield Desk(
                client=client,
                settings=settings,
                projector=projector,
                admin=admin,
                analyst=bearer(await login(client, "analyst1")),
                analyst2=bearer(await login(client, "analyst2")),
                senior=bearer(await login(client, "senior1")),
                sales_a=bearer(await login(client, "sales.a@example.com")),
                sales_b=bearer(await login(client, "sales_b")),
                ids=ids,
                run_a=run_a,
                run_b=run_b,
            )
    await projector.stop()


async def _count(client: httpx.AsyncClient, headers: dict[str, str], *run_ids: Any) -> int:
    found = 0
    for run_id in run_ids:
        response = await client.get("/api/runs/" + str(run_id), headers=headers)
        if response.status_code == 200 and response.json()["status"] == "completed":
            found += 1
    return found


async def _wait_for(probe: Any, done: Any, timeout: float = 120) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if done(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.2)


async def exceptions(desk: Desk, headers: dict[str, str], **params: Any) -> list[dict]:
    response = await desk.client.get(
        "/api/exceptions", headers=headers, params={"limit": 1000, **params}
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def act(
    desk: Desk, headers: dict[str, str], exception_id: str, action: str, **body: Any
) -> httpx.Response:
    return await desk.client.post(
        f"/api/exceptions/{exception_id}/{action}", headers=headers, json=body or None
    )


async def one(desk: Desk, severity: str, run: RunScenario | None = None) -> dict:
    """An exception of the run still `new`."""
    items = await exceptions(
        desk, desk.admin, run_id=(run or desk.run_a).run_id, severity=severity, status="new"
    )
    assert items, f"no new {severity} exception left"
    return items[0]


async def test_every_exception_read_answers_its_id_status_and_sla_age(desk: Desk) -> None:
    items = await exceptions(desk, desk.analyst, run_id=desk.run_a.run_id)
    assert items
    first = items[0]
    assert first["status"] == "new"
    assert first["sla_age_seconds"] > 0
    detail = await desk.client.get(f"/api/exceptions/{first['exception_id']}", headers=desk.analyst)
    assert detail.status_code == 200
    assert detail.json()["exception_id"] == first["exception_id"]
    assert detail.json()["status"] == "new"
    assert detail.json()["history"] == []


async def test_an_analyst_takes_an_exception_from_new_to_resolved_and_the_history_says_who_and_why(
    desk: Desk,
) -> None:
    exception = await one(desk, "soft")
    eid = exception["exception_id"]
    assignee = desk.ids["analyst2"]
    steps = [
        ("acknowledge", {}, "acknowledged"),
        ("assign", {"assignee": assignee, "notes": "yours"}, "acknowledged"),
        ("start", {}, "in_progress"),
        ("comment", {"notes": "called the seller"}, "in_progress"),
        ("resolve", {"notes": "seller sent the corrected DTI"}, "resolved"),
    ]
    for action, body, status in steps:
        response = await act(desk, desk.analyst, eid, action, **body)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    detail = (await desk.client.get(f"/api/exceptions/{eid}", headers=desk.analyst)).json()
    assert detail["assignee"] == assignee
    assert detail["closed_at"] is not None
    assert [h["action"] for h in detail["history"]] == [s[0] for s in steps]
    assert {h["actor_id"] for h in detail["history"]} == {desk.ids["analyst1"]}
    assert detail["history"][-1]["notes"] == "seller sent the corrected DTI"
    assert detail["history"][-1]["from_status"] == "in_progress"
    by_filters = await exceptions(
        desk, desk.analyst, status="resolved", assignee=assignee, loan_id=exception["loan_id"]
    )
    assert [item["exception_id"] for item in by_filters] == [eid]
    export = await desk.client.get(
        "/api/exceptions/export",
        headers=desk.analyst,
        params={"status": "resolved", "assignee": assignee},
    )
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["exception_id"], r["status"], r["assignee"]) for r in rows] == [
        (eid, "resolved", assignee)
    ]
    assert int(rows[0]["sla_age_seconds"]) > 0


async def test_an_invalid_transition_answers_409_naming_the_current_status(desk: Desk) -> None:
    exception = await one(desk, "soft")
    response = await act(desk, desk.analyst, exception["exception_id"], "resolve", notes="done")
    assert response.status_code == 409
    assert "status is new" in response.json()["error"]
    missing_notes = await act(desk, desk.analyst, exception["exception_id"], "comment")
    assert missing_notes.status_code == 400
    assert "requires notes" in missing_notes.json()["error"]
    unknown = await act(desk, desk.analyst, exception["exception_id"], "delete")
    assert unknown.status_code == 422


async def test_waiving_a_hard_exception_waits_for_a_second_person_with_the_right_role(
    desk: Desk,
) -> None:
    exception = await one(desk, "hard")
    eid = exception["exception_id"]
    for action in ("acknowledge", "start"):
        assert (await act(desk, desk.senior, eid, action)).status_code == 200
    waived = await act(desk, desk.senior, eid, "waive", reason="investor exception letter")
    assert waived.json()["status"] == "waiver_pending"
    assert waived.json()["waiver_requested_by"] == desk.ids["senior1"]
    own = await act(desk, desk.senior, eid, "approve-waiver")
    assert own.status_code == 403
    analyst = await act(desk, desk.analyst, eid, "approve-waiver")
    assert analyst.status_code == 403
    approved = await act(desk, desk.admin, eid, "approve-waiver", notes="agreed")
    assert approved.status_code == 200
    assert approved.json()["status"] == "waived"
    reopened = await act(desk, desk.analyst, eid, "reopen", notes="letter expired")
    assert reopened.json()["status"] == "reopened"


async def test_a_soft_exception_is_waived_by_one_person_and_a_rejected_waiver_goes_back(
    desk: Desk,
) -> None:
    soft = (await one(desk, "soft"))["exception_id"]
    for action in ("acknowledge", "start"):
        await act(desk, desk.analyst, soft, action)
    assert (await act(desk, desk.analyst, soft, "waive", notes="minor")).json()[
        "status"
    ] == "waived"
    hard = (await one(desk, "hard"))["exception_id"]
    for action in ("acknowledge", "start"):
        await act(desk, desk.analyst, hard, action)
    await act(desk, desk.analyst, hard, "waive", notes="please")
    rejected = await act(desk, desk.senior, hard, "reject-waiver", notes="no letter")
    assert rejected.json()["status"] == "in_progress"
    assert rejected.json()["history"][-1]["actor_role"] == "senior_analyst"


async def test_a_sales_team_user_reads_and_comments_on_its_own_teams_exceptions_only(
    desk: Desk,
) -> None:
    own = await one(desk, "soft", desk.run_a)
    other = await one(desk, "soft", desk.run_b)
    # Other modules' runs of the same team share the database: look at this module's two runs.
    seen = {i["run_id"] for i in await exceptions(desk, desk.sales_a)}
    assert str(desk.run_a.run_id) in seen
    assert str(desk.run_b.run_id) not in seen
    path = f"/api/exceptions/{own['exception_id']}"
    assert (await desk.client.get(path, headers=desk.sales_a)).status_code == 200
    comment = await act(desk, desk.sales_a, own["exception_id"], "comment", notes="on it")
    assert comment.status_code == 200
    assert comment.json()["history"][-1]["actor_role"] == "sales_team"
    assert (await act(desk, desk.sales_a, own["exception_id"], "acknowledge")).status_code == 403
    other_path = f"/api/exceptions/{other['exception_id']}"
    assert (await desk.client.get(other_path, headers=desk.sales_a)).status_code == 404
    probe = await act(desk, desk.sales_a, other["exception_id"], "comment", notes="peek")
    assert probe.status_code == 404
    bulk = await desk.client.post(
        "/api/exceptions/bulk/comment",
        headers=desk.sales_a,
        json={"exception_ids": [other["exception_id"]], "notes": "peek"},
    )
    assert bulk.json()["applied"] == 0
    assert bulk.json()["skipped"][0]["error"] == "Exception not found"


async def test_bulk_actions_by_filter_and_by_ids_publish_one_event_per_exception(
    desk: Desk,
) -> None:
    new_b = await exceptions(desk, desk.analyst, run_id=desk.run_b.run_id, status="new")
    response = await desk.client.post(
        "/api/exceptions/bulk/acknowledge",
        headers=desk.analyst,
        json={"filter": {"run_id": str(desk.run_b.run_id), "status": "new"}, "notes": "triage"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["applied"] == len(new_b) > 0
    assert response.json()["skipped"] == []
    assert await exceptions(desk, desk.analyst, run_id=desk.run_b.run_id, status="new") == []
    ids = [item["exception_id"] for item in new_b[:2]]
    again = await desk.client.post(
        "/api/exceptions/bulk/assign",
        headers=desk.analyst,
        json={
            "exception_ids": [*ids, "00000000-0000-0000-0000-000000000009"],
            "assignee": desk.ids["analyst1"],
        },
    )
    body = again.json()
    assert body["requested"] == 3
    assert body["applied"] == 2
    assert [s["error"] for s in body["skipped"]] == ["Exception not found"]
    twice = await desk.client.post(
        "/api/exceptions/bulk/acknowledge", headers=desk.analyst, json={"exception_ids": ids}
    )
    assert twice.json()["applied"] == 0
    assert {s["status"] for s in twice.json()["skipped"]} == {"acknowledged"}
    neither = await desk.client.post(
        "/api/exceptions/bulk/acknowledge", headers=desk.analyst, json={"notes": "x"}
    )
    assert neither.status_code == 400


async def test_an_admin_creates_a_senior_analyst_who_sees_every_team(desk: Desk) -> None:
    created = await desk.client.post(
        "/api/admin/users",
        headers=desk.admin,
        json={
            "username": "senior2",
            "email": "senior2@example.com",
            "role": "senior_analyst",
            "password": PASSWORD,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "senior_analyst"
    headers = bearer(await login(desk.client, "senior2"))
    # Other modules share the database: ask per run rather than reading one page of everyone's.
    for run in (desk.run_a, desk.run_b):
        assert await exceptions(desk, headers, run_id=str(run.run_id))
    assert (await desk.client.get("/api/admin/users", headers=headers)).status_code == 403


async def audit(desk: Desk, **params: Any) -> list[dict]:
    response = await desk.client.get(
        "/api/admin/audit", headers=desk.admin, params={"limit": 1000, **params}
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_every_write_login_and_logout_is_audited_with_pii_masked(desk: Desk) -> None:
    exception = await one(desk, "soft")
    request_id = "audit-probe-1"
    response = await desk.client.post(
        f"/api/exceptions/{exception['exception_id']}/acknowledge",
        headers={**desk.analyst, "X-Request-ID": request_id},
        json={"notes": "call sales.a@example.com"},
    )
    assert response.status_code == 200
    tokens = await login(desk.client, "sales.a@example.com")
    await desk.client.post(
        "/api/auth/login", data={"username": "sales.a@example.com", "password": "wrong-password"}
    )
    await desk.client.post("/api/auth/logout", headers=bearer(tokens), json={})
    # PostgreSQL cannot store a NUL: the audit row keeps a replacement, the projector goes on.
    await desk.client.post("/api/auth/login", data={"username": "nul\x00name", "password": "x"})

    entries = await _wait_for(
        lambda: audit(desk, request_id=request_id), lambda found: len(found) == 1
    )
    [entry] = entries
    assert entry["action"] == "exception_action.acknowledge"
    assert entry["actor_id"] == desk.ids["analyst1"]
    assert entry["actor_role"] == "analyst"
    assert entry["target"]["exception_id"] == exception["exception_id"]
    assert entry["target"]["run_id"] == exception["run_id"]
    assert entry["outcome"] == "success"
    assert entry["client_address"]
    logins = await _wait_for(lambda: audit(desk, action="login"), lambda found: len(found) >= 2)
    mine = [e for e in logins if e["actor"] == "s***@***"]
    assert {e["outcome"] for e in mine} >= {"success", "denied"}
    assert all("example.com" not in str(e) for e in await audit(desk))
    nul = await _wait_for(
        lambda: audit(desk, action="login", outcome="denied"),
        lambda found: any(e["actor"] == "nul\ufffdname" for e in found),
    )
    assert any(e["actor"] == "nul\ufffdname" for e in nul)
    logouts = await _wait_for(lambda: audit(desk, action="logout"), lambda found: found)
    assert logouts[0]["actor"] == "s***@***"
    everything = str(await audit(desk))
    assert PASSWORD not in everything
    assert "wrong-password" not in everything
    assert tokens["access_token"] not in everything


async def test_the_audit_log_is_admin_only_keyset_paged_and_exported_as_csv(desk: Desk) -> None:
    assert (await desk.client.get("/api/admin/audit", headers=desk.senior)).status_code == 403
    first = await desk.client.get("/api/admin/audit", headers=desk.admin, params={"limit": 2})
    page = first.json()
    assert len(page["items"]) == 2
    second = await desk.client.get(
        "/api/admin/audit", headers=desk.admin, params={"limit": 2, "after": page["next_cursor"]}
    )
    assert {e["event_id"] for e in page["items"]}.isdisjoint(
        e["event_id"] for e in second.json()["items"]
    )
    assert page["items"][-1]["occurred_at"] >= second.json()["items"][0]["occurred_at"]
    export = await desk.client.get(
        "/api/admin/audit/export", headers=desk.admin, params={"outcome": "denied"}
    )
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert rows
    assert {row["outcome"] for row in rows} == {"denied"}


async def test_a_rebuild_replays_triage_and_audit_into_the_same_checksum(desk: Desk) -> None:
    eid = (await one(desk, "soft"))["exception_id"]
    await act(desk, desk.analyst, eid, "acknowledge")
    await desk.projector.stop()
    conn = await connect(desk.settings)
    try:
        projector = Projector(desk.settings, conn)
        await projector.start()
        await projector.catch_up(timeout=120)  # every audit event published so far
        await projector.stop()
    finally:
        await conn.close()
    before = await checksum(desk.settings)
    assert before.tables["exception_actions"]["rows"] > 0
    assert before.tables["audit_log"]["rows"] > 0
    await rebuild(desk.settings, timeout=120)
    after = await checksum(desk.settings)
    assert after.digest == before.digest
    assert after.tables == before.tables
