"""Runs through HTTP: listing, filters, paging, one run, progress, retry, reprocess, and
`POST /pipeline/run` publishing to the real broker (and `?wait=` following the projection)."""

import asyncio
from decimal import Decimal
from uuid import UUID, uuid4

import httpx
import pytest
from conftest import World, project_scenarios, run_events_of, runs_topic_events

from services.common.kafka import KafkaPublisher
from services.gateway.db import connect
from services.gateway.projector.consumer import Projector
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.gateway_events import RunScenario

pytestmark = pytest.mark.integration


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["run_id"] for item in response.json()["items"]]


def in_order(found: list[str], *expected: RunScenario) -> bool:
    positions = [found.index(str(s.run_id)) for s in expected]
    return positions == sorted(positions)


async def test_runs_are_listed_newest_first(client: httpx.AsyncClient, world: World) -> None:
    found = ids(await client.get("/api/runs", headers=world.admin))
    assert in_order(found, world.running, world.run_n1, world.run_b1, world.run_a2, world.run_a1)


async def test_runs_filter_by_status_and_weekday(client: httpx.AsyncClient, world: World) -> None:
    failed = await client.get("/api/runs", params={"status": "failed"}, headers=world.analyst)
    assert str(world.run_a2.run_id) in ids(failed)
    assert {item["status"] for item in failed.json()["items"]} == {"failed"}
    monday = await client.get("/api/runs", params={"run_weekday": 0}, headers=world.analyst)
    assert str(world.run_a1.run_id) in ids(monday)
    assert {item["run_weekday_name"] for item in monday.json()["items"]} == {"Monday"}


async def test_a_sales_team_user_lists_only_its_teams_runs(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/api/runs", params={"limit": 1000}, headers=world.sales_a)
    found = ids(response)
    assert in_order(found, world.run_a2, world.run_a1)
    assert {item["sales_team_id"] for item in response.json()["items"]} == {"team-a"}


async def test_keyset_and_offset_paging_walk_the_same_order(
    client: httpx.AsyncClient, world: World
) -> None:
    everything = ids(await client.get("/api/runs", params={"limit": 1000}, headers=world.admin))
    walked: list[str] = []
    params: dict[str, object] = {"limit": 2}
    while True:
        page = await client.get("/api/runs", params=params, headers=world.admin)
        walked.extend(ids(page))
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
        params = {"limit": 2, "after": cursor}
    assert walked == everything
    skipped = await client.get("/api/runs", params={"skip": 1, "limit": 2}, headers=world.admin)
    assert ids(skipped) == everything[1:3]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"skip": -1},
        {"skip": 2**63},
        {"run_weekday": 7},
        {"status": "done"},
    ],
)
async def test_bad_list_parameters_answer_422_with_details(
    client: httpx.AsyncClient, world: World, params: dict[str, object]
) -> None:
    response = await client.get("/api/runs", params=params, headers=world.admin)
    assert response.status_code == 422
    body = response.json()
    assert body["status_code"] == 422
    assert body["details"]
    assert body["request_id"]


async def test_a_tampered_cursor_answers_400(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/api/runs", params={"after": "bm9wZQ"}, headers=world.admin)
    assert response.status_code == 400


async def test_one_run_shows_its_facts(client: httpx.AsyncClient, world: World) -> None:
    run = world.run_a1
    response = await client.get(f"/api/runs/{run.run_id}", headers=world.sales_a)
    assert response.status_code == 200
    body = response.json()
    counts = run.disposition_counts()
    assert body["status"] == "completed"
    assert body["last_phase"] == "archive"
    assert body["total_loans"] == 30
    assert body["total_balance"] == run.run_events()[2].total_balance.__str__()
    assert body["dispositions"] == counts
    assert body["run_weekday"] == 0
    assert body["run_weekday_name"] == "Monday"
    assert body["sales_team_id"] == "team-a"
    assert body["source"] == {"kind": "folder", "location": "tapes"}


async def test_another_teams_run_answers_404_like_a_missing_one(
    client: httpx.AsyncClient, world: World
) -> None:
    other = await client.get(f"/api/runs/{world.run_a1.run_id}", headers=world.sales_b)
    missing = await client.get(f"/api/runs/{uuid4()}", headers=world.sales_b)
    assert other.status_code == missing.status_code == 404
    assert other.json()["error"] == missing.json()["error"]
    for path in ("progress",):
        probe = await client.get(f"/api/runs/{world.run_a1.run_id}/{path}", headers=world.sales_b)
        assert probe.status_code == 404


async def test_progress_of_a_completed_run_is_complete(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(f"/api/runs/{world.run_a1.run_id}/progress", headers=world.admin)
    body = response.json()
    assert body["overall_percent"] == "100.00"
    assert body["estimated_seconds_left"] == 0
    phases = {p["phase"]: p for p in body["phases"]}
    assert list(phases) == [
        "ingest",
        "validate",
        "eligibility",
        "pricing",
        "disposition",
        "output",
        "archive",
    ]
    assert {p["status"] for p in body["phases"]} == {"completed"}
    assert phases["disposition"]["processed"] == phases["disposition"]["total"] == 30
    assert phases["output"]["processed"] == 4


async def test_progress_of_a_failed_run_marks_the_failed_phase(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(f"/api/runs/{world.run_a2.run_id}/progress", headers=world.admin)
    phases = {p["phase"]: p for p in response.json()["phases"]}
    assert phases["pricing"]["status"] == "failed"
    assert phases["ingest"]["status"] == "completed"
    assert response.json()["estimated_seconds_left"] is None


async def test_progress_of_a_running_run_counts_loans_per_phase(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(f"/api/runs/{world.running.run_id}/progress", headers=world.admin)
    body = response.json()
    phases = {p["phase"]: p for p in body["phases"]}
    assert body["status"] == "running"
    assert phases["ingest"]["status"] == "completed"
    assert phases["pricing"]["processed"] == 10
    assert phases["output"]["status"] == "running"
    assert Decimal(0) < Decimal(body["overall_percent"]) < Decimal(100)
    assert body["last_phase"] == "output"


async def test_retrying_a_completed_run_answers_409(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(f"/api/runs/{world.run_a1.run_id}/retry", headers=world.admin)
    assert response.status_code == 409


async def test_retrying_a_failed_run_publishes_a_retry_from_its_failed_phase(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    failed = RunScenario(loans=3, sales_team_id="team-a", fail_phase="pricing")
    await project_scenarios(settings, [failed])
    run_id = str(failed.run_id)
    assert (
        await client.post(f"/api/runs/{run_id}/retry", headers=world.sales_b)
    ).status_code == 404
    response = await client.post(f"/api/runs/{run_id}/retry", headers=world.sales_a)
    assert response.status_code == 202
    assert response.json()["attempt"] == 2
    events = await run_events_of(settings, run_id)
    assert events[0]["event_type"] == "run.retry_requested"
    assert events[0]["phase"] == "pricing"
    assert events[0]["attempt"] == 2


async def test_reprocessing_a_run_publishes_a_new_run_with_its_parent(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    parent = str(world.run_n1.run_id)
    response = await client.post(
        f"/api/runs/{parent}/reprocess", headers=world.analyst, json={"irr_target": "7.5"}
    )
    assert response.status_code == 202
    body = response.json()
    assert body["parent_run_id"] == parent
    assert body["status"] == "pending"
    assert body["irr_target"] == "7.5"
    events = await run_events_of(settings, body["run_id"])
    assert events[0]["event_type"] == "run.reprocess_requested"
    assert events[0]["parent_run_id"] == parent


async def test_reprocessing_a_running_run_answers_409(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(f"/api/runs/{world.running.run_id}/reprocess", headers=world.admin)
    assert response.status_code == 409


async def test_a_run_request_publishes_the_event_and_answers_202_pending(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    body = {"pdate": "2026-11-23", "irr_target": "8.05", "folder": "batch-7"}
    response = await client.post("/api/pipeline/run", headers=world.sales_a, json=body)
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "pending"
    assert run["sales_team_id"] == "team-a"
    events = await run_events_of(settings, run["run_id"])
    assert events[0]["event_type"] == "run.requested"
    assert events[0]["folder"] == "teams/team-a/batch-7"
    assert events[0]["params"]["sales_team_id"] == "team-a"
    assert events[0]["requested_by"] == "sales_a"


@pytest.mark.parametrize(
    ("body", "query", "status"),
    [
        ({"pdate": "2026-11-23", "irr_target": "0"}, {}, 422),
        ({"pdate": "2026-11-23", "irr_target": "-1"}, {}, 422),
        ({"pdate": "2026-11-23", "irr_target": "100"}, {}, 422),
        ({"irr_target": "8"}, {}, 422),
        ({"pdate": "2026-11-23"}, {"wait": 301}, 422),
        ({"pdate": "2026-11-23", "folder": "../other"}, {}, 400),
        ({"pdate": "2026-11-23", "folder": "%2e%2e/x"}, {}, 400),
        ({"pdate": "2026-11-23", "folder": "/etc"}, {}, 400),
        ({"pdate": "2026-11-23", "sales_team_id": "team-b"}, {}, 403),
    ],
)
async def test_bad_run_requests_are_refused(
    client: httpx.AsyncClient, world: World, body: dict, query: dict, status: int
) -> None:
    response = await client.post(
        "/api/pipeline/run", headers=world.sales_a, json=body, params=query
    )
    assert response.status_code == status, response.text


async def test_a_run_request_for_an_unknown_team_answers_400(
    client: httpx.AsyncClient, world: World
) -> None:
    body = {"pdate": "2026-11-23", "sales_team_id": "no-such-team"}
    response = await client.post("/api/pipeline/run", headers=world.admin, json=body)
    assert response.status_code == 400


async def test_waiting_on_a_run_answers_200_once_the_projection_shows_it_ended(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    folder = f"waited-{uuid4().hex[:8]}"
    conn = await connect(settings)
    projector = Projector(settings, conn)
    await projector.start()
    stop = asyncio.Event()
    projecting = asyncio.create_task(projector.run(stop))
    try:
        request = asyncio.create_task(
            client.post(
                "/api/pipeline/run",
                params={"wait": 60},
                headers=world.analyst,
                json={"pdate": "2026-11-23", "folder": folder},
            )
        )
        requested = await runs_topic_events(settings, lambda e: e.get("folder") == folder)
        run_id = requested[0]["run_id"]
        scenario = RunScenario(run_id=UUID(run_id), loans=6, requested=False)
        async with KafkaPublisher(settings) as publisher:
            for topic, key, event in scenario.messages():
                await publisher.publish(topic, key, event)
        response = await asyncio.wait_for(request, 60)
    finally:
        stop.set()
        await projecting
        await projector.stop()
        await conn.close()
    assert response.status_code == 200, response.text
    assert response.json()["run_id"] == run_id
    assert response.json()["status"] == "completed"
    assert response.json()["total_loans"] == 6
