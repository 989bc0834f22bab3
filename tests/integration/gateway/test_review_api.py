"""Credit review through the API, with a real broker, projector and database (SPEC §8): scored
loans and model cards folded, one case per `human_review` loan opened by the review job (twice
is still once), the queue with its filters, sorts and summary, assign / start / release with the
workload limit, case detail with similar decided loans, team scoping, and a rebuild that gives the
same checksum."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
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
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.ids import event_id
from contracts.scoring import ModelLoaded, ModelMetrics
from contracts.topics import MODELS
from services.common.kafka import KafkaPublisher
from services.gateway.db import alembic_config, connect, migrate
from services.gateway.identity import service
from services.gateway.projector.consumer import Projector
from services.gateway.projector.maintenance import checksum, rebuild, wait_caught_up
from services.gateway.review.jobs import ReviewJobs, open_cases
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.gateway_events import RunScenario
from tests.unit.gateway.review_events import scored_batches, scored_messages

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Desk:
    """The users of a credit desk, two teams' scored runs and the review job."""

    client: httpx.AsyncClient
    app: FastAPI
    settings: GatewaySettings
    projector: RunningProjector
    jobs: ReviewJobs
    admin: dict[str, str]
    analyst: dict[str, str]
    analyst2: dict[str, str]
    senior: dict[str, str]
    sales_a: dict[str, str]
    sales_b: dict[str, str]
    ids: dict[str, str]
    run_a: RunScenario
    run_b: RunScenario
    reviews: dict[str, int]


def model_card(version: str = "7") -> ModelLoaded:
    metrics = ModelMetrics(
        auc="0.8100", gini="0.6200", ks="0.4800", precision="0.3", recall="0.6", f1="0.4"
    )
    return ModelLoaded(
        event_id=event_id("model.loaded", event_id("model", version), version),
        model_name="loan-engine-scoring",
        model_version=version,
        trained_at=datetime(2026, 12, 1, tzinfo=UTC),
        training_samples=20000,
        training_seed=7,
        default_rate="0.0800",
        metrics={"xgboost": metrics},
        numeric_reference=(),
        categorical_reference=(),
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def human_reviews(scenario: RunScenario) -> int:
    return sum(
        1
        for batch in scored_batches(scenario)
        for event in batch.events
        if event.routing.decision == "human_review"
    )


async def wait_for(probe: Any, done: Any, timeout: float = 120) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if done(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.2)


async def table_rows(settings: GatewaySettings, table: str) -> int:
    conn = await connect(settings)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM gateway.{table}"))
    finally:
        await conn.close()


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
        tmp_path_factory.mktemp("review-storage"),
        review_wait_seconds=60,
        review_jobs_enabled=False,
    )
    await migrate(settings)
    projector = RunningProjector(settings)
    await projector.start()
    run_a = RunScenario(loans=60, batch_size=20, sales_team_id="team-a")
    run_b = RunScenario(loans=30, batch_size=15, sales_team_id="team-b")
    await publish_runs(settings, [run_a, run_b])
    async with KafkaPublisher(settings) as publisher:
        for scenario in (run_a, run_b):
            for topic, key, batch in scored_messages(scenario):
                await publisher.publish(topic, key, batch)
        await publisher.publish(MODELS, "loan-engine-scoring", model_card())
    scored = run_a.loans + run_b.loans
    await wait_for(lambda: table_rows(settings, "loan_scores"), lambda n: n >= scored)
    application = create_app_for(settings)
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
            jobs = ReviewJobs(application.state.sessionmaker, application.state.publisher, settings)
            yield Desk(
                client=client,
                app=application,
                settings=settings,
                projector=projector,
                jobs=jobs,
                admin=bearer(await login(client, "root")),
                analyst=bearer(await login(client, "analyst1")),
                analyst2=bearer(await login(client, "analyst2")),
                senior=bearer(await login(client, "senior1")),
                sales_a=bearer(await login(client, "sales_a")),
                sales_b=bearer(await login(client, "sales_b")),
                ids=ids,
                run_a=run_a,
                run_b=run_b,
                reviews={"team-a": human_reviews(run_a), "team-b": human_reviews(run_b)},
            )
    await projector.stop()


def create_app_for(settings: GatewaySettings) -> FastAPI:
    from services.gateway.app import create_app

    return create_app(settings)


async def queue(desk: Desk, headers: dict[str, str], **params: Any) -> dict:
    response = await desk.client.get("/api/review/queue", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
async def opened(desk: Desk) -> int:
    """Every human_review loan's case and every auto decision, recorded by the review job and
    folded."""
    total = sum(desk.reviews.values())
    assert total > 10
    first = await desk.jobs.tick()
    assert first == total
    found = await wait_for(
        lambda: queue(desk, desk.admin, limit=1), lambda page: page["total"] >= total
    )
    assert found["total"] == total
    autos = auto_routed(desk.run_a) + auto_routed(desk.run_b)
    await wait_for(lambda: auto_decisions(desk.settings), lambda n: n >= autos)
    return total


async def case_action(
    desk: Desk, headers: dict[str, str], case_id: str, action: str, **body: Any
) -> httpx.Response:
    return await desk.client.post(
        f"/api/review/cases/{case_id}/{action}", headers=headers, json=body or None
    )


async def test_scored_loans_and_the_model_card_are_folded(desk: Desk) -> None:
    assert await table_rows(desk.settings, "loan_scores") == desk.run_a.loans + desk.run_b.loans
    assert await table_rows(desk.settings, "model_cards") == 1


async def test_every_human_review_loan_gets_one_case_even_when_the_job_runs_twice(
    desk: Desk, opened: int
) -> None:
    assert await desk.jobs.tick() == 0  # nothing left unopened
    before = await table_rows(desk.settings, "review_actions")
    # A replayed opening (another replica, a retried tick) publishes the same events again.
    conn = await connect(desk.settings)
    try:
        await conn.execute("DELETE FROM gateway.review_cases WHERE run_id = $1", desk.run_b.run_id)
        async with desk.app.state.sessionmaker() as session:
            # One batch a query: one tick goes through every batch, not just the first.
            republished = await open_cases(
                session, desk.app.state.publisher, desk.settings, datetime.now(UTC), batches=1
            )
        assert republished == desk.reviews["team-b"] > 2
        await wait_caught_up(desk.settings, conn, timeout=60)
        # Their event ids were seen: the fold skips them (no new history, no new case).
        assert await table_rows(desk.settings, "review_actions") == before
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM gateway.review_cases WHERE run_id = $1", desk.run_b.run_id
            )
            == 0
        )
    finally:
        await conn.close()
    # The only way back for the deleted rows: a rebuild from the log, with the projector stopped.
    await desk.projector.stop()
    await rebuild(desk.settings, timeout=120)
    await desk.projector.start()
    page = await queue(desk, desk.admin, limit=1)
    assert page["total"] == opened
    assert await table_rows(desk.settings, "review_actions") == before


async def test_review_jobs_wait_out_a_replay_and_feed_a_lagging_projector_each_case_once(
    desk: Desk, opened: int
) -> None:
    def gateway() -> ReviewJobs:  # a gateway process's jobs, started afresh
        return ReviewJobs(desk.app.state.sessionmaker, desk.app.state.publisher, desk.settings)

    await desk.projector.stop()  # from here on nothing published is folded: a lagging projector
    conn = await connect(desk.settings)
    try:
        # A replay still filling the read models: run B's loans look scored without their cases.
        await conn.execute("UPDATE gateway.projector_state SET replaying = true")
        await conn.execute("DELETE FROM gateway.review_cases WHERE run_id = $1", desk.run_b.run_id)
        jobs = gateway()
        assert await jobs.tick() == 0
        await conn.execute("UPDATE gateway.projector_state SET replaying = false")
        # Caught up, the job acts on what it sees (here: the rows this test deleted), once.
        assert await jobs.tick() == desk.reviews["team-b"]
        assert await jobs.tick() == 0  # not folded yet, and not published again
        assert await gateway().tick() == desk.reviews["team-b"]  # a restart publishes once more
    finally:
        await conn.execute("UPDATE gateway.projector_state SET replaying = false")
        await conn.close()
    await rebuild(desk.settings, timeout=120)
    await desk.projector.start()
    assert (await queue(desk, desk.admin, limit=1))["total"] == opened


async def test_the_queue_filters_by_priority_sorts_and_pages(desk: Desk, opened: int) -> None:
    everything = (await queue(desk, desk.admin, limit=1000))["items"]
    assert len(everything) == opened
    scores = [item["priority_score"] for item in everything]
    assert scores == sorted(scores, reverse=True)
    assert all(item["status"] == "pending" and item["sla_state"] == "ok" for item in everything)
    level = everything[0]["priority"]
    only = (await queue(desk, desk.admin, priority=level, limit=1000))["items"]
    assert only and all(item["priority"] == level for item in only)
    by_deadline = (await queue(desk, desk.admin, sort="deadline", limit=1000))["items"]
    deadlines = [item["sla_deadline"] for item in by_deadline]
    assert deadlines == sorted(deadlines)
    page = await queue(desk, desk.admin, skip=2, limit=3)
    assert [item["case_id"] for item in page["items"]] == [
        item["case_id"] for item in everything[2:5]
    ]
    bad = await desk.client.get("/api/review/queue", headers=desk.admin, params={"sort": "size"})
    assert bad.status_code == 422


@pytest.mark.usefixtures("opened")
async def test_an_analyst_assigns_starts_and_releases_a_case_and_release_lowers_its_priority(
    desk: Desk,
) -> None:
    head = (await queue(desk, desk.analyst, limit=1))["items"][0]
    cid = head["case_id"]
    assigned = await case_action(desk, desk.analyst, cid, "assign")
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "assigned"
    assert assigned.json()["assignee"] == desk.ids["analyst1"]
    other = await case_action(desk, desk.analyst2, cid, "start")
    assert other.status_code == 403
    started = await case_action(desk, desk.analyst, cid, "start")
    assert started.json()["status"] == "in_progress"
    mine = await queue(desk, desk.analyst, analyst=desk.ids["analyst1"], status="in_progress")
    assert [item["case_id"] for item in mine["items"]] == [cid]
    again = await case_action(desk, desk.analyst, cid, "start")
    assert again.status_code == 409
    released = await case_action(desk, desk.analyst, cid, "release", notes="need a senior")
    body = released.json()
    assert (body["status"], body["assignee"], body["releases"]) == ("pending", None, 1)
    # One step (10 points) lower; the few seconds of age since add less than a point.
    assert body["priority_score"] <= max(0, head["priority_score"] - 9)
    history = [(h["action"], h["applied"]) for h in body["history"]]
    assert history == [("open", True), ("assign", True), ("start", True), ("release", True)]
    assert body["history"][-1]["notes"] == "need a senior"


async def test_nobody_is_given_more_than_five_active_cases(desk: Desk, opened: int) -> None:
    pending = (await queue(desk, desk.senior, status="pending", limit=6))["items"]
    assert len(pending) == 6
    for item in pending[:5]:
        response = await case_action(
            desk, desk.senior, item["case_id"], "assign", assignee=desk.ids["analyst2"]
        )
        assert response.status_code == 200, response.text
    sixth = await case_action(
        desk, desk.senior, pending[5]["case_id"], "assign", assignee=desk.ids["analyst2"]
    )
    assert sixth.status_code == 409
    assert "5 active" in sixth.json()["error"]
    summary = (await desk.client.get("/api/review/queue/summary", headers=desk.admin)).json()
    assert summary["total_assigned"] >= 5
    assert (
        summary["total_pending"] + summary["total_assigned"] + summary["total_in_progress"]
        == opened
    )
    assert sum(summary["by_priority"].values()) == opened
    for item in pending[:5]:
        released = await case_action(desk, desk.senior, item["case_id"], "release")
        assert released.status_code == 200


async def test_seven_assignments_at_once_give_a_fresh_analyst_five_cases_and_refuse_two(
    desk: Desk, opened: int
) -> None:
    async with desk.app.state.sessionmaker() as session:
        fresh = await service.create_user(
            session,
            username="analyst3",
            email="analyst3@example.com",
            role="analyst",
            password=PASSWORD,
            team_id=None,
        )
    pending = (await queue(desk, desk.senior, status="pending", limit=7))["items"]
    assert len(pending) == 7 <= opened
    answers = await asyncio.gather(
        *(
            case_action(desk, desk.senior, item["case_id"], "assign", assignee=str(fresh.id))
            for item in pending
        )
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] * 5 + [409] * 2, [answer.text for answer in answers]
    for item, answer in zip(pending, answers, strict=True):
        if answer.status_code == 200:
            released = await case_action(desk, desk.senior, item["case_id"], "release")
            assert released.status_code == 200, released.text


@pytest.mark.usefixtures("opened")
async def test_an_analyst_may_not_assign_a_case_to_someone_else_nor_a_sales_user_act(
    desk: Desk,
) -> None:
    cid = (await queue(desk, desk.admin, status="pending", limit=1))["items"][0]["case_id"]
    response = await case_action(desk, desk.analyst, cid, "assign", assignee=desk.ids["analyst2"])
    assert response.status_code == 403
    sales = await queue(desk, desk.sales_a, limit=1000)
    own = sales["items"][0]["case_id"]
    assert (await case_action(desk, desk.sales_a, own, "assign")).status_code == 403
    to_sales = await case_action(desk, desk.senior, own, "assign", assignee=desk.ids["sales_a"])
    assert to_sales.status_code == 400


@pytest.mark.usefixtures("opened")
async def test_case_detail_shows_score_factors_loan_exceptions_and_five_similar_decided_loans(
    desk: Desk,
) -> None:
    cid = (await queue(desk, desk.admin, limit=1))["items"][0]["case_id"]
    response = await desk.client.get(f"/api/review/cases/{cid}", headers=desk.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["score_detail"]["routing_decision"] == "human_review"
    assert body["score_detail"]["positive_factors"] or body["score_detail"]["negative_factors"]
    assert body["score_detail"]["features"]
    assert body["loan"]["seq"] == body["seq"]
    assert body["loan"]["loan_id"] == body["loan_id"]
    assert body["model_leaning"] == ("approve" if body["score"] >= 725 else "decline")
    assert body["justification_min_length"] == 50
    assert isinstance(body["exceptions"], list)
    similar = body["similar_loans"]
    assert len(similar) == 5
    decision_types = {
        "auto_approve",
        "auto_decline",
        "analyst_approve",
        "analyst_decline",
        "analyst_approve_with_conditions",
    }
    assert all(item["decision"] in decision_types for item in similar)
    assert [item["distance"] for item in similar] == sorted(item["distance"] for item in similar)
    assert body["loan_id"] not in {item["loan_id"] for item in similar}


@pytest.mark.usefixtures("opened")
async def test_sales_users_see_only_their_own_teams_cases(desk: Desk) -> None:
    a_items = (await queue(desk, desk.sales_a, limit=1000))["items"]
    b_items = (await queue(desk, desk.sales_b, limit=1000))["items"]
    assert len(a_items) == desk.reviews["team-a"]
    assert len(b_items) == desk.reviews["team-b"]
    assert {item["sales_team_id"] for item in a_items} == {"team-a"}
    foreign = b_items[0]["case_id"]
    assert (
        await desk.client.get(f"/api/review/cases/{foreign}", headers=desk.sales_a)
    ).status_code == 404
    assert (await case_action(desk, desk.sales_a, foreign, "assign")).status_code == 404
    summary = (await desk.client.get("/api/review/queue/summary", headers=desk.sales_b)).json()
    assert sum(summary["by_priority"].values()) == desk.reviews["team-b"]
    for item in (await queue(desk, desk.sales_a, limit=1000))["items"]:
        similar = (
            await desk.client.get(f"/api/review/cases/{item['case_id']}", headers=desk.sales_a)
        ).json()["similar_loans"]
        assert {s["run_id"] for s in similar} <= {str(desk.run_a.run_id)}
        break


def auto_routed(scenario: RunScenario) -> int:
    return sum(
        1
        for batch in scored_batches(scenario)
        for event in batch.events
        if event.routing.decision != "human_review"
    )


async def auto_decisions(settings: GatewaySettings) -> int:
    conn = await connect(settings)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM gateway.review_decisions WHERE case_id IS NULL"
            )
        )
    finally:
        await conn.close()


@pytest.mark.usefixtures("opened")
async def test_every_auto_routed_loan_gets_its_auto_decision_once(desk: Desk) -> None:
    expected = auto_routed(desk.run_a) + auto_routed(desk.run_b)
    found = await wait_for(lambda: auto_decisions(desk.settings), lambda n: n >= expected)
    assert found == expected
    await desk.jobs.tick()
    conn = await connect(desk.settings)
    try:
        await wait_caught_up(desk.settings, conn, timeout=60)
        types = dict(
            await conn.fetch(
                "SELECT decision_type, count(*) FROM gateway.review_decisions "
                "WHERE case_id IS NULL GROUP BY decision_type"
            )
        )
    finally:
        await conn.close()
    assert await auto_decisions(desk.settings) == expected
    assert set(types) <= {"auto_approve", "auto_decline"} and sum(types.values()) == expected


async def take(desk: Desk, headers: dict[str, str], leaning: str) -> dict:
    """A pending case the model leans `leaning` on, assigned to and started by the caller."""
    items = (await queue(desk, desk.admin, status="pending", limit=1000))["items"]
    chosen = next(item for item in items if (item["score"] >= 725) == (leaning == "approve"))
    cid = chosen["case_id"]
    assert (await case_action(desk, headers, cid, "assign")).status_code == 200
    started = await case_action(desk, headers, cid, "start")
    assert started.status_code == 200, started.text
    return started.json()


async def decide(desk: Desk, headers: dict[str, str], case_id: str, **body: Any) -> httpx.Response:
    return await desk.client.post(
        f"/api/review/cases/{case_id}/decision", headers=headers, json=body
    )


JUSTIFIED = "Twelve years of verified reserves and a guarantor on file outweigh the score."


@pytest.mark.usefixtures("opened")
async def test_an_analyst_approves_with_conditions_and_marks_one_fulfilled(desk: Desk) -> None:
    case = await take(desk, desk.analyst, "approve")
    cid = case["case_id"]
    missing = await decide(desk, desk.analyst, cid, outcome="approve_with_conditions")
    assert missing.status_code == 400
    conditions = [
        {"condition_type": "documentation", "description": "Two recent pay stubs"},
        {"condition_type": "reduced_amount", "description": "At most $400,000"},
    ]
    response = await decide(
        desk, desk.analyst, cid, outcome="approve_with_conditions", conditions=conditions
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "decided"
    (made,) = body["decisions"]
    assert made["decision_type"] == "analyst_approve_with_conditions"
    assert made["status"] == "final" and not made["is_override"]
    assert made["review_time_seconds"] >= 0
    assert [c["condition_type"] for c in made["conditions"]] == ["documentation", "reduced_amount"]
    fulfilled = await desk.client.post(
        f"/api/review/decisions/{made['decision_id']}/conditions/2/fulfil", headers=desk.analyst
    )
    assert fulfilled.status_code == 200, fulfilled.text
    assert fulfilled.json()["decisions"][0]["fulfilled"] == [2]
    twice = await desk.client.post(
        f"/api/review/decisions/{made['decision_id']}/conditions/2/fulfil", headers=desk.analyst
    )
    assert twice.status_code == 409
    again = await decide(desk, desk.analyst, cid, outcome="approve", terms="t")
    assert again.status_code == 409


@pytest.mark.usefixtures("opened")
async def test_a_decline_against_the_model_waits_for_a_second_person(desk: Desk) -> None:
    case = await take(desk, desk.analyst, "approve")
    cid = case["case_id"]
    short = await decide(
        desk, desk.analyst, cid, outcome="decline", reasoning="thin file", justification="no"
    )
    assert short.status_code == 400
    assert "50" in short.json()["error"]
    response = await decide(
        desk, desk.analyst, cid, outcome="decline", reasoning="thin file", justification=JUSTIFIED
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "override_pending"
    decision_id = response.json()["decisions"][0]["decision_id"]
    assert (
        await desk.client.get("/api/review/pending-overrides", headers=desk.analyst)
    ).status_code == 403
    pending = (await desk.client.get("/api/review/pending-overrides", headers=desk.senior)).json()
    assert decision_id in {item["decision_id"] for item in pending}
    url = f"/api/review/decisions/{decision_id}"
    assert (
        await desk.client.post(f"{url}/approve-override", headers=desk.analyst)
    ).status_code == 403
    no_notes = await desk.client.post(f"{url}/reject-override", headers=desk.senior)
    assert no_notes.status_code == 400
    rejected = await desk.client.post(
        f"{url}/reject-override", headers=desk.senior, json={"notes": "Reserves not verified"}
    )
    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert (body["status"], body["assignee"]) == ("in_progress", desk.ids["analyst1"])
    assert body["decisions"][0]["status"] == "override_rejected"
    # The analyst decides again; this time a second person approves.
    again = await decide(
        desk, desk.analyst, cid, outcome="decline", reasoning="thin file", justification=JUSTIFIED
    )
    second = again.json()["decisions"][-1]["decision_id"]
    approved = await desk.client.post(
        f"/api/review/decisions/{second}/approve-override", headers=desk.senior
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "decided"
    final = approved.json()["decisions"][-1]
    assert (final["status"], final["override_by"]) == ("final", desk.ids["senior1"])
    pending = (await desk.client.get("/api/review/pending-overrides", headers=desk.senior)).json()
    assert second not in {item["decision_id"] for item in pending}


@pytest.mark.usefixtures("opened")
async def test_a_rebuild_replays_scores_cases_and_their_history_into_the_same_checksum(
    desk: Desk,
) -> None:
    cid = (await queue(desk, desk.analyst, status="pending", limit=1))["items"][0]["case_id"]
    assert (await case_action(desk, desk.analyst, cid, "assign")).status_code == 200
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
    tables = (
        "loan_scores",
        "scored_batches",
        "model_cards",
        "review_cases",
        "review_actions",
        "review_decisions",
        "auto_decided_batches",
    )
    for table in tables:
        assert before.tables[table]["rows"] > 0, table
    await rebuild(desk.settings, timeout=120)
    after = await checksum(desk.settings)
    assert after.digest == before.digest
    assert after.tables == before.tables
    await desk.projector.start()


async def test_the_review_migration_downgrades_to_reconciliation_and_upgrades_again(
    database_url: str, tmp_path: Path
) -> None:
    url = await _create_database(database_url)
    try:
        settings = gateway_settings(url, "127.0.0.1:1", "unused.", tmp_path)
        await migrate(settings)
        assert not await gone(settings, "review_cases")
        engine = create_async_engine(settings.database_dsn)

        def downgrade(connection: Connection) -> None:
            config = alembic_config(settings.database_dsn)
            config.attributes["connection"] = connection
            command.downgrade(config, "0011_reconciliation")

        try:
            async with engine.begin() as connection:
                await connection.run_sync(downgrade)
        finally:
            await engine.dispose()
        assert await gone(settings, "review_cases")
        assert await gone(settings, "loan_scores")
        await migrate(settings)
        assert not await gone(settings, "review_decisions")
    finally:
        await _drop_database(database_url, url)


async def gone(settings: GatewaySettings, table: str) -> bool:
    conn = await connect(settings)
    try:
        return await conn.fetchval("SELECT to_regclass($1)", f"gateway.{table}") is None
    finally:
        await conn.close()
