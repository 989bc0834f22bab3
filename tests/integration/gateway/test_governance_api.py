"""Governance through HTTP over the projected world (SPEC §7): rule sets, corrections recorded
as events and projected, reprocess edits, lineage with log positions, stages, team scoping."""

import asyncio
from datetime import timedelta
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from conftest import World, run_events_of
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.codec import loads
from contracts.ids import event_id
from contracts.runs import RunReprocessRequested
from contracts.topics import CORRECTIONS, RUNS
from services.common.storage import LocalStorage
from services.gateway.db import connect, make_engine
from services.gateway.projector.plan import Record, plan
from services.gateway.projector.writer import write_chunk
from services.gateway.reconciliation.repository import pending_runs
from services.gateway.reconciliation.service import reconcile
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.gateway_events import CREATED_AT, to_record

pytestmark = pytest.mark.integration


async def first_loan(client: httpx.AsyncClient, world: World, disposition: str) -> dict:
    response = await client.get(
        "/api/loans",
        params={"run_id": str(world.run_a1.run_id), "disposition": disposition},
        headers=world.admin,
    )
    return response.json()["items"][0]


async def project_corrections(settings: GatewaySettings, correction_id: str) -> list[dict]:
    """Read corrections.v1 from the broker until `correction_id` is there (other modules of the
    session may have published before it) and project what was read, as the projector does."""
    consumer = AIOKafkaConsumer(
        settings.topic(CORRECTIONS),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Record] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline and not any(
            loads(record.value).get("correction_id") == correction_id
            for record in records
            if record.value
        ):
            for items in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(
                    Record(CORRECTIONS.name, r.partition, r.offset, r.key, r.value, (), r.timestamp)
                    for r in items
                )
    finally:
        await consumer.stop()
    conn = await connect(settings)
    try:
        chunk = plan(records)
        assert not chunk.rejected
        await write_chunk(conn, chunk, {}, 0)
    finally:
        await conn.close()
    return [loads(record.value) for record in records if record.value]


async def test_rule_sets_are_listed_shown_and_diffed(
    client: httpx.AsyncClient, world: World
) -> None:
    listed = (await client.get("/api/rule-sets", headers=world.sales_a)).json()
    assert [(item["version"], item["current"]) for item in listed][:2] == [
        ("2026.11.1", True),
        ("2026.12.1", False),
    ]
    shown = (await client.get("/api/rule-sets/2026.12.1", headers=world.analyst)).json()
    ltv = next(rule for rule in shown["document"]["rules"] if rule["name"] == "ltv_ratio")
    assert (shown["eligibility_rules"], ltv["maximum"]) == (10, "90.0")
    diff = (await client.get("/api/rule-sets/2026.11.1/diff/2026.12.1", headers=world.admin)).json()
    assert diff["thresholds_changed"] == [
        {"rule": "ltv_ratio", "setting": "maximum", "before": "97.0", "after": "90.0"}
    ]
    missing = await client.get("/api/rule-sets/1999.1.1", headers=world.admin)
    assert missing.status_code == 404
    assert (await client.get("/api/rule-sets")).status_code == 401


async def test_a_correction_is_published_projected_and_listed_per_loan_and_per_run(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    loan = await first_loan(client, world, "to_purchase")
    body = {"field": "ltv_ratio", "value": "99", "reason": "Appraisal re-read"}
    response = await client.post(
        f"/api/loans/{loan['loan_id']}/corrections", headers=world.analyst, json=body
    )
    assert response.status_code == 202, response.text
    recorded = response.json()
    assert (recorded["previous"], recorded["corrected_by"]) == (loan["ltv_ratio"], "analyst1")
    events = await project_corrections(settings, recorded["correction_id"])
    assert any(event.get("correction_id") == recorded["correction_id"] for event in events)

    per_loan = await client.get(f"/api/loans/{loan['loan_id']}/corrections", headers=world.sales_a)
    assert [item["correction_id"] for item in per_loan.json()] == [recorded["correction_id"]]
    per_run = await client.get(f"/api/runs/{world.run_a1.run_id}/corrections", headers=world.admin)
    assert recorded["correction_id"] in [item["correction_id"] for item in per_run.json()["items"]]

    history = (
        await client.get(f"/api/loans/{loan['loan_id']}/history", headers=world.sales_a)
    ).json()
    kinds = [event["kind"] for event in history["events"]]
    assert kinds[:4] == ["ingested", "evaluated", "priced", "dispositioned"]
    assert "corrected" in kinds
    for event in history["events"]:
        assert event["partition"] is not None and event["offset"] is not None
        assert (event["source_file"], event["row"]) == (loan["source_file"], loan["row"])
    evaluated = history["events"][1]
    assert evaluated["details"]["rule_set_version"] == "2026.11.1"
    assert evaluated["topic"] == settings.topic_prefix + "loans.evaluated.v1"


async def test_corrections_are_refused_for_unknown_fields_and_sales_teams(
    client: httpx.AsyncClient, world: World
) -> None:
    loan = await first_loan(client, world, "to_purchase")
    url = f"/api/loans/{loan['loan_id']}/corrections"
    body = {"field": "ltv_ratio", "value": "70", "reason": "typo"}
    assert (await client.post(url, headers=world.sales_a, json=body)).status_code == 403
    assert (await client.post(url, headers=world.sales_b, json=body)).status_code == 404
    unknown = {**body, "field": "favourite_colour"}
    refused = await client.post(url, headers=world.analyst, json=unknown)
    assert refused.status_code == 400
    assert "favourite_colour" in refused.json()["error"]
    kept = {**body, "field": "state", "value": "NJ"}
    assert (await client.post(url, headers=world.analyst, json=kept)).status_code == 202
    no_reason = {**body, "reason": ""}
    assert (await client.post(url, headers=world.analyst, json=no_reason)).status_code == 422
    # A NUL cannot be stored: refused at the door rather than stopping the projector.
    for nul in ({**body, "value": "8\u00005"}, {**body, "reason": "re\u0000read"}):
        assert (await client.post(url, headers=world.analyst, json=nul)).status_code == 422


TRIAGE_ACTIONS = (
    "acknowledge", "assign", "start", "comment", "resolve", "waive", "reopen",
    "approve-waiver", "reject-waiver",
)  # fmt: skip


async def test_every_governance_endpoint_answers_404_to_another_team(
    client: httpx.AsyncClient, world: World
) -> None:
    loan = await first_loan(client, world, "rejected")
    run = world.run_a1.run_id
    exceptions = await client.get(
        "/api/exceptions", params={"run_id": str(run)}, headers=world.admin
    )
    exception = exceptions.json()["items"][0]["exception_id"]
    reads = [
        f"/api/loans/{loan['loan_id']}/history",
        f"/api/loans/{loan['loan_id']}/corrections",
        f"/api/runs/{run}/corrections",
        f"/api/runs/{run}/stages",
        f"/api/runs/{run}/diff",
        f"/api/runs/{run}/reconciliation",
        f"/api/exceptions/{exception}",
        f"/api/exceptions?run_id={run}",
        f"/api/exceptions/export?run_id={run}",
        f"/api/dq/summary?run_id={run}",
        f"/api/dq/failures?run_id={run}",
    ]
    for path in reads:
        response = await client.get(path, headers=world.sales_b)
        assert response.status_code == 404, path
        assert (await client.get(path, headers=world.sales_a)).status_code in (200, 409), path

    # Writes are refused as if the run, loan or exception did not exist: before any role check,
    # and before anything is published.
    note = {"notes": "peek", "reason": "peek"}
    writes = [
        (f"/api/loans/{loan['loan_id']}/corrections", {"field": "state", "value": "NJ", **note}),
        (f"/api/runs/{run}/reprocess", {}),
        (f"/api/runs/{run}/retry", None),
        (f"/api/runs/{run}/reconciliation", None),
        (f"/api/runs/{run}/reconciliation/findings/{uuid4()}/accept", note),
        (f"/api/runs/{run}/reconciliation/findings/{uuid4()}/flag", note),
        *((f"/api/exceptions/{exception}/{action}", note) for action in TRIAGE_ACTIONS),
        ("/api/exceptions/bulk/comment", {"filter": {"run_id": str(run)}, **note}),
    ]
    for path, body in writes:
        response = await client.post(path, json=body, headers=world.sales_b)
        assert response.status_code == 404, (path, response.text)
    by_ids = await client.post(
        "/api/exceptions/bulk/comment",
        json={"exception_ids": [exception], "notes": "peek"},
        headers=world.sales_b,
    )
    assert (by_ids.json()["applied"], by_ids.json()["skipped"][0]["error"]) == (
        0,
        "Exception not found",
    )
    others = await client.get(
        "/api/exceptions", params={"loan_id": loan["loan_id"]}, headers=world.sales_b
    )
    assert others.json()["items"] == []
    trend = (await client.get("/api/dq/trend", headers=world.sales_b)).json()
    assert str(run) not in [point["run_id"] for point in trend]


async def test_a_governance_list_answers_400_to_a_cursor_of_another_list(
    client: httpx.AsyncClient, world: World
) -> None:
    run = world.run_a1.run_id
    runs = await client.get("/api/runs", params={"limit": 1}, headers=world.admin)
    foreign = runs.json()["next_cursor"]
    assert foreign
    for path, params in (
        (f"/api/runs/{run}/corrections", {}),
        (f"/api/runs/{run}/reconciliation", {}),
        ("/api/dq/failures", {"run_id": str(run)}),
        ("/api/admin/audit", {}),
    ):
        for cursor in (foreign, "not-a-cursor"):
            response = await client.get(
                path, params={**params, "after": cursor}, headers=world.admin
            )
            assert (response.status_code, response.json()["error"]) == (400, "Invalid cursor"), (
                path,
                cursor,
            )


async def test_stages_of_a_completed_run_hold_nothing_up(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    body = (await client.get(f"/api/runs/{world.run_a1.run_id}/stages", headers=world.admin)).json()
    stages = {stage["stage"]: stage for stage in body["stages"]}
    assert list(stages) == [
        "read", "ingested", "evaluated", "priced", "dispositioned",
        "reported", "projected", "scored", "decided",
    ]  # fmt: skip
    for name in ("ingested", "evaluated", "priced", "dispositioned", "projected"):
        assert (stages[name]["records_in"], stages[name]["records_out"]) == (30, 30), name
        assert (stages[name]["stuck"], stages[name]["stuck_loan_ids"]) == (0, []), name
    # Scoring and decisions show where a scoring service has announced a model (models.v1): the
    # world's runs are not scored (test_lineage_review_api covers scored runs).
    conn = await connect(settings)
    try:
        scoring = bool(await conn.fetchval("SELECT count(*) FROM gateway.model_cards"))
    finally:
        await conn.close()
    for name in ("scored", "decided"):
        assert stages[name]["available"] is scoring, name
    if scoring:
        assert (stages["scored"]["records_in"], stages["scored"]["records_out"]) == (30, 0)
        assert stages["scored"]["stuck"] == len(stages["scored"]["stuck_loan_ids"]) == 30


async def test_a_reprocess_carries_the_rows_and_corrections_it_was_asked_for(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    loan = await first_loan(client, world, "to_purchase")
    body = {
        "loan_ids": [loan["loan_id"]],
        "apply_corrections": True,
        "rule_set_version": "2026.12.1",
    }
    response = await client.post(
        f"/api/runs/{world.run_a1.run_id}/reprocess", headers=world.analyst, json=body
    )
    assert response.status_code == 202, response.text
    [event] = await run_events_of(settings, response.json()["run_id"])
    assert event["params"]["rule_set_version"] == "2026.12.1"
    assert event["apply_corrections"] is True
    assert event["edits"]["rows"] == [{"source_file": loan["source_file"], "row": loan["row"]}]
    assert all(isinstance(cell["value"], str) for cell in event["edits"]["corrections"])


@pytest.mark.parametrize(
    "body",
    [
        {"rule_set_version": "1999.1.1"},
        {"loan_ids": ["00000000-0000-4000-8000-000000000000"]},
        {"loan_ids": "a loan of another run"},
    ],
)
async def test_a_reprocess_with_an_unknown_version_or_foreign_loans_answers_400(
    client: httpx.AsyncClient, world: World, body: dict
) -> None:
    if body.get("loan_ids") == "a loan of another run":
        other = await client.get(
            "/api/loans", params={"run_id": str(world.run_b1.run_id)}, headers=world.admin
        )
        body = {"loan_ids": [other.json()["items"][0]["loan_id"]]}
    response = await client.post(
        f"/api/runs/{world.run_a1.run_id}/reprocess", headers=world.admin, json=body
    )
    assert response.status_code == 400, response.text
    assert "details" not in response.json()


async def test_a_reprocess_body_that_breaks_the_schema_answers_422_with_details(
    client: httpx.AsyncClient, world: World
) -> None:
    for body in ({"loan_ids": []}, {"loan_ids": ["not-a-uuid"]}, {"irr_target": "lots"}):
        response = await client.post(
            f"/api/runs/{world.run_a1.run_id}/reprocess", headers=world.admin, json=body
        )
        assert response.status_code == 422, (body, response.text)
        assert response.json()["details"], body


async def test_a_reprocess_shows_its_rule_set_version_and_has_a_diff_once_completed_or_decided(
    client: httpx.AsyncClient, world: World, settings: GatewaySettings
) -> None:
    parent = world.run_n1
    child = uuid4()
    # Dated long before the world's runs: it joins no one's newest-first page.
    created = CREATED_AT - timedelta(days=30)
    event = RunReprocessRequested(
        event_id=event_id("run.reprocess_requested", child),
        run_id=child,
        occurred_at=created,
        producer="test",
        params=parent.params.model_copy(update={"rule_set_version": "2026.12.1"}),
        parent_run_id=parent.run_id,
        requested_by="analyst1",
        created_at=created,
    )
    conn = await connect(settings)
    try:
        await write_chunk(conn, plan([to_record(RUNS, str(child), event, 0, created)]), {}, 0)
    finally:
        await conn.close()
    shown = (await client.get(f"/api/runs/{child}", headers=world.admin)).json()
    assert (shown["status"], shown["parent_run_id"]) == ("pending", str(parent.run_id))
    assert shown["rule_set_version"] == "2026.12.1"
    earlier = (await client.get(f"/api/runs/{parent.run_id}", headers=world.admin)).json()
    assert earlier["rule_set_version"] is None  # the rules service's current one
    diff = await client.get(f"/api/runs/{child}/diff", headers=world.admin)
    assert diff.status_code == 409
    assert diff.json()["error"] == "The reprocess has not completed (its status is pending)"
    # Once it has completed and every loan has its decision, the run is `decided`: a finished
    # run, whose diff answers and which the reconciliation job still picks up.
    conn = await connect(settings)
    try:
        await conn.execute(
            "UPDATE gateway.runs SET status = 'decided', completed_at = $2, total_loans = 0 "
            "WHERE run_id = $1",
            child,
            created,
        )
        engine = make_engine(settings)
        try:
            async with AsyncSession(engine) as session:
                waiting = await pending_runs(session, limit=10_000)
        finally:
            await engine.dispose()
        assert child in waiting
        decided = await client.get(f"/api/runs/{child}/diff", headers=world.admin)
        assert decided.status_code == 200, decided.text
    finally:
        await conn.execute("DELETE FROM gateway.runs WHERE run_id = $1", child)
        await conn.close()


async def test_the_diff_of_a_run_that_is_not_a_reprocess_answers_409(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(f"/api/runs/{world.run_n1.run_id}/diff", headers=world.admin)
    assert response.status_code == 409


async def test_dq_summary_gives_the_runs_dimensions_fields_and_score_bands(
    client: httpx.AsyncClient, world: World
) -> None:
    run = str(world.run_a1.run_id)
    body = (
        await client.get("/api/dq/summary", params={"run_id": run}, headers=world.sales_a)
    ).json()
    summary = (await client.get(f"/api/summary/{run}", headers=world.admin)).json()
    assert body["loans"] == 30
    assert body["rule_set_version"] == "2026.11.1"
    assert body["dimensions"] == summary["eligibility_checks"]["dq"]
    fields = {field["field"]: field for field in body["fields"]}
    # Loans 13 and 26 of the world carry an invalid loan amount.
    assert (fields["loan_amount"]["present"], fields["loan_amount"]["valid"]) == (30, 28)
    assert fields["loan_amount"]["validity_pct"] == "93.33"
    assert fields["property_type"]["valid"] is None
    assert sum(band["loans"] for band in body["score_bands"]) == 30


async def test_dq_failures_list_the_weakest_loans_first_with_their_reasons(
    client: httpx.AsyncClient, world: World
) -> None:
    params = {"run_id": str(world.run_a1.run_id), "max_score": "99", "limit": 2}
    page = (await client.get("/api/dq/failures", params=params, headers=world.analyst)).json()
    scores = [float(item["dq_score"]) for item in page["items"]]
    assert scores == sorted(scores) and all(score <= 99 for score in scores)
    assert page["next_cursor"] is not None
    rest = await client.get(
        "/api/dq/failures", params={**params, "after": page["next_cursor"]}, headers=world.analyst
    )
    assert rest.status_code == 200
    seen = {item["loan_id"] for item in page["items"]}
    assert not seen & {item["loan_id"] for item in rest.json()["items"]}
    invalid = [item for item in page["items"] + rest.json()["items"] if item["invalid_fields"]]
    assert all(item["invalid_fields"] == ["loan_amount"] for item in invalid)


async def test_dq_trend_gives_per_run_means_over_time_in_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    mine = (await client.get("/api/dq/trend", headers=world.sales_a)).json()
    assert str(world.run_a1.run_id) in [point["run_id"] for point in mine]
    assert str(world.run_b1.run_id) not in [point["run_id"] for point in mine]
    everyone = (
        await client.get(
            "/api/dq/trend",
            params={"from": "2026-11-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"},
            headers=world.admin,
        )
    ).json()
    created = [point["created_at"] for point in everyone]
    assert created == sorted(created)
    assert str(world.run_b1.run_id) in [point["run_id"] for point in everyone]
    bad = await client.get(
        "/api/dq/trend",
        params={"from": "2027-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        headers=world.admin,
    )
    assert bad.status_code == 400


async def test_dq_endpoints_answer_404_to_another_team(
    client: httpx.AsyncClient, world: World
) -> None:
    run = str(world.run_a1.run_id)
    for path in ("/api/dq/summary", "/api/dq/failures"):
        response = await client.get(path, params={"run_id": run}, headers=world.sales_b)
        assert response.status_code == 404, path


async def test_reconciliation_is_pending_until_run_and_scoped_like_the_run(
    client: httpx.AsyncClient, world: World
) -> None:
    path = f"/api/runs/{world.run_b1.run_id}/reconciliation"
    pending = await client.get(path, headers=world.sales_b)
    assert pending.status_code == 200
    assert (pending.json()["status"], pending.json()["findings"]["items"]) == ("pending", [])
    assert (await client.get(path, headers=world.sales_a)).status_code == 404
    assert (await client.post(path, headers=world.sales_a)).status_code == 404
    assert (await client.post(path, headers=world.sales_b)).status_code == 403
    failed = f"/api/runs/{world.run_a2.run_id}/reconciliation"
    assert (await client.post(failed, headers=world.admin)).status_code == 409


async def test_a_reconciliation_on_demand_reports_what_does_not_match_and_findings_are_reviewed(
    client: httpx.AsyncClient, world: World
) -> None:
    # The world's archive holds a stand-in tape (`a,b` / `1,2`): nothing of it matches.
    path = f"/api/runs/{world.run_n1.run_id}/reconciliation"
    response = await client.post(path, headers=world.analyst, params={"limit": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "findings"
    assert body["counts"]["matched"] == 0
    assert sum(body["counts"].values()) > 0
    assert len(body["findings"]["items"]) == 5 and body["findings"]["next_cursor"]
    finding = body["findings"]["items"][0]["finding_id"]
    review = await client.post(
        f"{path}/findings/{finding}/flag", json={"notes": "re-send the tape"}, headers=world.analyst
    )
    assert review.status_code == 202
    assert review.json()["action"] == "flag"
    unknown = await client.post(
        f"{path}/findings/00000000-0000-4000-8000-000000000000/accept",
        json={"notes": "x"},
        headers=world.analyst,
    )
    assert unknown.status_code == 404
    kinds = await client.get(path, params={"kind": "downstream_only"}, headers=world.admin)
    assert {item["kind"] for item in kinds.json()["findings"]["items"]} <= {"downstream_only"}


async def test_a_reconciliation_streams_the_reports_from_files_never_reading_one_whole(
    world: World, settings: GatewaySettings
) -> None:
    # A million-loan run's purchase tape is ~110 MB: read whole, it took the projector past 900 MB.
    class NoWholeReads(LocalStorage):
        async def get_bytes(self, key: str) -> bytes:
            raise AssertionError(f"{key} read whole into memory")

    engine = make_engine(settings)
    try:
        async with AsyncSession(engine) as session:
            summary = await reconcile(
                session, NoWholeReads(settings.storage_root), world.run_n1.run_id
            )
            await session.rollback()
    finally:
        await engine.dispose()
    assert summary["status"] == "findings", summary["error"]
    assert summary["matched"] == 0 and summary["source_only"] + summary["downstream_only"] > 0
