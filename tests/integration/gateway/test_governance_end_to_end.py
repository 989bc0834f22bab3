"""Governance over the real pipeline (SPEC §7): a golden tape run, then reprocesses of it — with
no change (byte-identical reports), with the stricter rule set (what-if), and of one corrected
loan alone (a partial run) — their diffs, lineage, stages, and a rebuild with the same checksum.

The four workers run as processes; the API and the projector run in this process.
"""

import asyncio
import csv
import hashlib
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import httpx
import pytest
from conftest import bearer, login
from test_gateway_end_to_end import (  # noqa: F401 - module-scoped fixtures of the same harness
    WAIT_SECONDS,
    all_pages,
    e2e_root,
    e2e_settings,
    gateway,
    workers,
)
from typer.testing import CliRunner

from contracts.runs import REPORT_KEYS
from services.cli.main import app as cli
from services.common.storage import storage_from_settings
from services.gateway.db import connect
from services.gateway.projector.maintenance import checksum
from services.gateway.reconciliation.job import reconcile_completed_runs
from services.gateway.settings import GatewaySettings
from tests.paths import GOLDEN

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def module_started() -> datetime:
    """When this module's first test began: older runs in the shared database are not ours."""
    return datetime.now(UTC)


async def ended(client: httpx.AsyncClient, run_id: str, headers: dict) -> dict:
    """The run once the projection shows it ended."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        response = await client.get(f"/api/runs/{run_id}", headers=headers)
        if response.status_code == 200 and response.json()["status"] in ("completed", "failed"):
            return response.json()
        await asyncio.sleep(0.5)
    raise AssertionError(f"run {run_id} did not end")


async def reprocessed(client: httpx.AsyncClient, parent: str, body: dict, headers: dict) -> dict:
    response = await client.post(f"/api/runs/{parent}/reprocess", json=body, headers=headers)
    assert response.status_code == 202, response.text
    run = await ended(client, response.json()["run_id"], headers)
    assert (run["status"], run["error"], run["parent_run_id"]) == ("completed", None, parent)
    return run


async def reports(client: httpx.AsyncClient, run_id: str, headers: dict) -> dict[str, bytes]:
    found = {}
    for key in REPORT_KEYS:
        url = f"/api/runs/{run_id}/notebook-outputs/{key}/download"
        found[key] = (await client.get(url, headers=headers)).content
    return found


async def settled(client: httpx.AsyncClient, path: str, headers: dict, ok) -> dict:  # noqa: ANN001
    """GET `path` until `ok(body)` holds (the projector catches up in the background)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        body = (await client.get(path, headers=headers)).json()
        if ok(body) or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.3)


async def test_reprocess_what_if_correction_diff_lineage_and_stages_over_the_pipeline(
    module_started: datetime,  # noqa: ARG001 - taken before this module's first run
    gateway: httpx.AsyncClient,  # noqa: F811
    e2e_settings: GatewaySettings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = gateway
    headers = bearer(await login(client, "root"))
    tape = GOLDEN / "csv" / "tape.csv"
    folder = f"governance-{uuid4().hex[:6]}"
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
    parent = response.json()
    assert parent["status"] == "completed", parent
    parent_id = parent["run_id"]
    parent_reports = await reports(client, parent_id, headers)
    loans = await all_pages(client, "/api/loans", {"run_id": parent_id}, headers)

    # A reprocess with no change: reports byte for byte the parent's, nothing in the diff.
    same = await reprocessed(client, parent_id, {}, headers)
    assert await reports(client, same["run_id"], headers) == parent_reports
    diff = (await client.get(f"/api/runs/{same['run_id']}/diff", headers=headers)).json()
    assert diff["counts"] == {"changed": 0, "unchanged": len(loans)}

    # What-if: the stricter rule set rejects every eligible loan with 90 < LTV <= 97.
    strict = await reprocessed(client, parent_id, {"rule_set_version": "2026.12.1"}, headers)
    moved = [
        loan
        for loan in loans
        if loan["disposition"] != "rejected"
        and Decimal("90") < Decimal(loan["ltv_ratio"]) <= Decimal("97")
    ]
    assert moved, "the golden tape has loans the stricter LTV maximum rejects"
    diff = (await client.get(f"/api/runs/{strict['run_id']}/diff", headers=headers)).json()
    counts = diff["counts"]
    assert counts["changed"] + counts["unchanged"] == len(loans)
    assert sum(v for k, v in counts.items() if k.endswith("->rejected")) == len(moved)
    transitions = [c for c in diff["changes"] if c["disposition_before"] != c["disposition_after"]]
    assert {change["seller_loan_number"] for change in transitions} == {
        loan["seller_loan_number"] for loan in moved
    }
    # Rejected loans that passed validation gain the LTV exception too, without a transition.
    assert all(change["exceptions_added"] == ["ltv_ratio"] for change in diff["changes"])
    assert all(not change["exceptions_removed"] for change in diff["changes"])
    child_loan = transitions[0]["loan_id"]
    history = (await client.get(f"/api/loans/{child_loan}/history", headers=headers)).json()
    evaluated = next(event for event in history["events"] if event["kind"] == "evaluated")
    assert evaluated["details"]["rule_set_version"] == "2026.12.1"

    # A correction of one bought loan, then a partial reprocess of it alone.
    loan = next(loan for loan in loans if loan["disposition"] == "to_purchase")
    correction = await client.post(
        f"/api/loans/{loan['loan_id']}/corrections",
        json={"field": "ltv_ratio", "value": "99", "reason": "LTV re-read from the appraisal"},
        headers=headers,
    )
    assert correction.status_code == 202, correction.text
    await settled(client, f"/api/loans/{loan['loan_id']}/corrections", headers, bool)
    body = {"loan_ids": [loan["loan_id"]], "apply_corrections": True}
    partial = await reprocessed(client, parent_id, body, headers)
    assert partial["total_loans"] == 1
    diff = (await client.get(f"/api/runs/{partial['run_id']}/diff", headers=headers)).json()
    assert diff["counts"] == {"changed": 1, "unchanged": 0, "to_purchase->rejected": 1}
    [change] = diff["changes"]
    assert change["parent_loan_id"] == loan["loan_id"]
    assert (change["exceptions_added"], change["price_after"]) == (["ltv_ratio"], None)
    assert change["price_before"] == loan["final_price"]
    partial_reports = await reports(client, partial["run_id"], headers)
    assert partial_reports["purchase_tape"].count(b"\r\n") == 1  # the header alone
    assert partial_reports["rejection_report"].count(b"\r\n") == 2  # header and the one loan
    assert (
        b",rejected,,,ltv_ratio,hard,LTV ratio exceeds maximum of 97%,"
        in (partial_reports["rejection_report"])
    )

    # Lineage of the corrected loan: every stage with its log position, then the correction.
    history = (await client.get(f"/api/loans/{loan['loan_id']}/history", headers=headers)).json()
    assert [event["kind"] for event in history["events"]] == [
        "ingested", "evaluated", "priced", "dispositioned", "corrected"
    ]  # fmt: skip
    assert all(event["offset"] is not None for event in history["events"])
    assert history["events"][-1]["details"]["value"] == "99"

    # The same what-if through the command line: a new IRR target moves every bought loan's
    # price and nothing else.
    monkeypatch.setenv("DATABASE_URL", e2e_settings.database_dsn)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", e2e_settings.kafka_bootstrap_servers)
    monkeypatch.setenv("TOPIC_PREFIX", e2e_settings.topic_prefix)
    monkeypatch.setenv("STORAGE_ROOT", str(e2e_settings.storage_root))
    args = ["runs", "reprocess", parent_id, "--irr-target", "7.5", "--wait", str(WAIT_SECONDS)]
    result = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    child = json.loads(result.output.strip().splitlines()[-1])
    assert (child["status"], child["parent_run_id"]) == ("completed", parent_id)
    await ended(client, child["run_id"], headers)
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["runs", "diff", child["run_id"], "--json"]
    )
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output.strip().splitlines()[-1])["counts"]
    bought = sum(loan["disposition"] == "to_purchase" for loan in loans)
    assert counts == {"changed": bought, "unchanged": len(loans) - bought}

    # Stages of the parent: nothing held up anywhere.
    stages = (await client.get(f"/api/runs/{parent_id}/stages", headers=headers)).json()
    for stage in stages["stages"]:
        if stage["available"] and stage["stage"] != "read":
            assert stage["records_in"] == stage["records_out"] == len(loans), stage
            assert (stage["failed"], stage["stuck"]) == (0, 0), stage

    # Every read model, the new ones included, comes back the same from the log.
    digest = hashlib.sha256(repr((await checksum(e2e_settings)).tables).encode()).hexdigest()
    from services.gateway.projector.maintenance import rebuild

    await rebuild(e2e_settings, timeout=WAIT_SECONDS)
    again = await checksum(e2e_settings)
    assert hashlib.sha256(repr(again.tables).encode()).hexdigest() == digest
    # This module's one correction, and any that other modules published on the shared topics.
    assert "loan_corrections" in again.tables and again.tables["loan_corrections"]["rows"] >= 1


async def test_completed_runs_reconcile_by_themselves_and_tampering_is_found(
    module_started: datetime,
    gateway: httpx.AsyncClient,  # noqa: F811
    e2e_settings: GatewaySettings,  # noqa: F811
) -> None:
    client = gateway
    headers = bearer(await login(client, "root"))
    stop = asyncio.Event()
    storage = storage_from_settings(e2e_settings)
    job = asyncio.create_task(reconcile_completed_runs(e2e_settings, storage, stop))
    try:
        tape = GOLDEN / "csv" / "tape.csv"
        folder = f"reconcile-{uuid4().hex[:6]}"
        await client.post(
            "/api/files/upload",
            params={"path": folder},
            files={"file": (tape.name, tape.read_bytes())},
            headers=headers,
        )
        run = (
            await client.post(
                "/api/pipeline/run",
                params={"wait": WAIT_SECONDS},
                json={"pdate": "2026-11-23", "folder": folder},
                headers=headers,
            )
        ).json()
        run_id = run["run_id"]

        # Every completed run reconciles fully: this golden run, and the earlier reprocesses
        # (a corrected partial run included: its edits are part of its source).
        completed = (
            await client.get("/api/runs", params={"status": "completed"}, headers=headers)
        ).json()
        # Other modules share the log and the database (and keep their archives elsewhere):
        # this module's runs are the ones created since it began.
        ours = [
            item
            for item in completed["items"]
            if datetime.fromisoformat(item["created_at"]) >= module_started
        ]
        assert any(item["run_id"] == run_id for item in ours)
        for item in ours:
            path = f"/api/runs/{item['run_id']}/reconciliation"
            body = await settled(client, path, headers, lambda b: b["status"] != "pending")
            assert body["status"] == "clean", (item["run_id"], body)
            assert body["counts"]["matched"] == item["total_loans"]
        path = f"/api/runs/{run_id}/reconciliation"

        # A projected fact deleted: its source row is source-only.
        conn = await connect(e2e_settings)
        try:
            deleted = await conn.fetchrow(
                "DELETE FROM gateway.loan_facts WHERE run_id = $1 AND seq = 3 "
                "RETURNING source_file, row",
                UUID(run_id),
            )
        finally:
            await conn.close()
        # A report row corrupted: the last row of the purchase tape gets a new amount.
        key = f"outputs/{run_id}/purchase_tape.csv"
        lines = (await storage.get_bytes(key)).decode().split("\r\n")
        last = len(lines) - 2  # the file ends with a line break
        cells = next(csv.reader([lines[last]]))
        original = cells[1]
        cells[1] = "123.45"
        out = io.StringIO()
        csv.writer(out).writerow(cells)
        lines[last] = out.getvalue().rstrip("\r\n")
        await storage.put_bytes(key, "\r\n".join(lines).encode())

        again = await client.post(path, headers=headers)
        assert again.status_code == 200, again.text
        body = again.json()
        assert body["status"] == "findings"
        assert body["counts"]["source_only"] == 1 and body["counts"]["mismatched"] == 1
        by_kind = {finding["kind"]: finding for finding in body["findings"]["items"]}
        assert by_kind["source_only"]["locator"] == f"{deleted['source_file']}/{deleted['row']}"
        [diff] = by_kind["mismatched"]["fields"]
        assert (diff["field"], diff["where"]) == ("loan_amount", f"purchase_tape:{last + 1}")
        assert (diff["source"], diff["downstream"]) == (original, "123.45")

        finding = by_kind["mismatched"]["finding_id"]
        review = await client.post(
            f"{path}/findings/{finding}/accept", json={"notes": "test tampering"}, headers=headers
        )
        assert review.status_code == 202, review.text
        shown = await settled(
            client,
            path,
            headers,
            lambda b: any(f["review"] == "accept" for f in b["findings"]["items"]),
        )
        accepted = [f for f in shown["findings"]["items"] if f["finding_id"] == finding]
        assert accepted[0]["review_notes"] == "test tampering"
    finally:
        stop.set()
        await job
