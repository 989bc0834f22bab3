"""Governance over the real pipeline (SPEC §7): a golden tape run, then reprocesses of it — with
no change (byte-identical reports), with the stricter rule set (what-if), and of one corrected
loan alone (a partial run) — their diffs, lineage, stages, and a rebuild with the same checksum;
and the desk's whole story through the API (exceptions triaged and waived with four eyes, a loan
corrected and reprocessed, reconciled, traced and audited), again after `projections rebuild`.

The four workers run as processes; the API and the projector run in this process.
"""

import asyncio
import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import httpx
import pytest
from conftest import PASSWORD, bearer, login
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
from services.gateway.projector.maintenance import checksum, rebuild, wait_caught_up
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
    # Audited like the API's reprocess, with the operator as its actor.
    audited = await settled(
        client,
        "/api/admin/audit?source=cli&action=reprocess",
        headers,
        lambda page: any(e["target"].get("child_run_id") == child["run_id"] for e in page["items"]),
    )
    [entry] = [e for e in audited["items"] if e["target"].get("child_run_id") == child["run_id"]]
    assert (entry["target"]["run_id"], entry["outcome"]) == (parent_id, "success")
    assert entry["actor_role"] == "operator"
    refused = await asyncio.to_thread(
        CliRunner().invoke, cli, ["runs", "reprocess", parent_id, "--rule-set-version", "1999.1"]
    )
    assert refused.exit_code == 2, refused.output
    audited = await settled(
        client,
        "/api/admin/audit?source=cli&action=reprocess&outcome=failed",
        headers,
        lambda page: any(e["target"]["run_id"] == parent_id for e in page["items"]),
    )
    assert any(e["target"]["run_id"] == parent_id for e in audited["items"])
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

    # Every read model, the new ones included, comes back the same from the log: compared once
    # the whole log is folded (the last audit events may still be on their way; on the shared
    # topics, so may other modules' records), not while the projector is still folding.
    conn = await connect(e2e_settings)
    try:
        await wait_caught_up(e2e_settings, conn, timeout=WAIT_SECONDS)
    finally:
        await conn.close()
    digest = hashlib.sha256(repr((await checksum(e2e_settings)).tables).encode()).hexdigest()
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
    tampered: dict[str, bytes] = {}
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
        tampered[key] = await storage.get_bytes(key)
        lines = tampered[key].decode().split("\r\n")
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
        # Undo the tampering for the module's later tests: the report as written, and the read
        # models as the log makes them (the deleted fact comes back).
        for key, body in tampered.items():
            await storage.put_bytes(key, body)
        await rebuild(e2e_settings, timeout=WAIT_SECONDS)


# The "Done when" of governance (issue 12): one run taken from its exceptions to a clean,
# corrected, reprocessed and audited state through the API alone, and the same after a rebuild.

DESK_PASSWORD = "desk password 12345"


@dataclass
class Story:
    """What the story did, to check before and after the rebuild."""

    run_id: str
    total_loans: int
    ids: dict[str, str]
    acknowledged: list[str]
    waived: dict
    loan: dict
    correction_id: str
    child_id: str
    requests: dict[str, tuple[str, str]] = field(default_factory=dict)
    """request id -> (audited action, outcome)."""


class Desk:
    """Requests as one user, each with a request id of its own that the audit log must show."""

    def __init__(self, client: httpx.AsyncClient, story_requests: dict, name: str) -> None:
        self.client, self.requests, self.name, self.headers = client, story_requests, name, {}

    async def login(self, password: str) -> "Desk":
        self.headers = bearer(await login(self.client, self.name, password))
        return self

    async def post(
        self, path: str, action: str, outcome: str = "success", **kwargs: object
    ) -> httpx.Response:
        request_id = f"story-{uuid4().hex[:12]}"
        headers = {**self.headers, "X-Request-ID": request_id}
        response = await self.client.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]
        self.requests[request_id] = (action, outcome)
        return response

    async def get(self, path: str, **params: object) -> dict:
        response = await self.client.get(path, headers=self.headers, params=params)
        assert response.status_code == 200, (path, response.text)
        return response.json()


async def test_a_run_goes_from_exceptions_to_corrected_reconciled_and_audited_then_rebuilt_alike(
    gateway: httpx.AsyncClient,  # noqa: F811
    e2e_settings: GatewaySettings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = gateway
    requests: dict[str, tuple[str, str]] = {}
    admin = await Desk(client, requests, "root").login(PASSWORD)
    ids = {}
    for name, role in (
        ("desk.ann", "analyst"),
        ("desk.bob", "analyst"),
        ("desk.sue", "senior_analyst"),
    ):
        created = await admin.post(
            "/api/admin/users",
            "create_user",
            json={
                "username": name,
                "email": f"{name}@example.com",
                "role": role,
                "password": DESK_PASSWORD,
            },
        )
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
    ann = await Desk(client, requests, "desk.ann").login(DESK_PASSWORD)
    bob = await Desk(client, requests, "desk.bob").login(DESK_PASSWORD)
    sue = await Desk(client, requests, "desk.sue").login(DESK_PASSWORD)

    # A run of the golden tape, with its exceptions.
    tape = GOLDEN / "csv" / "tape.csv"
    folder = f"desk-{uuid4().hex[:6]}"
    upload = await ann.post(
        "/api/files/upload",
        "upload_file",
        params={"path": folder},
        files={"file": (tape.name, tape.read_bytes())},
    )
    assert upload.status_code == 201, upload.text
    ran = await ann.post(
        "/api/pipeline/run",
        "run_pipeline",
        params={"wait": WAIT_SECONDS},
        json={"pdate": "2026-11-23", "irr_target": "8.05", "folder": folder},
    )
    run = ran.json()
    assert (ran.status_code, run["status"]) == (200, "completed"), ran.text
    run_id = run["run_id"]
    exceptions = await all_pages(client, "/api/exceptions", {"run_id": run_id}, ann.headers)
    assert len(exceptions) == run["exceptions_count"] > 0
    assert {item["status"] for item in exceptions} == {"new"}

    # Some acknowledged and assigned: three soft exceptions, in bulk, to Bob.
    soft = [item["exception_id"] for item in exceptions if item["severity"] == "soft"][:3]
    assert len(soft) == 3
    acknowledged = await ann.post(
        "/api/exceptions/bulk/acknowledge",
        "bulk_action.acknowledge",
        json={"exception_ids": soft, "notes": "seen at the morning review"},
    )
    assert acknowledged.json()["applied"] == 3, acknowledged.text
    assigned = await ann.post(
        "/api/exceptions/bulk/assign",
        "bulk_action.assign",
        json={"exception_ids": soft, "assignee": ids["desk.bob"], "notes": "yours"},
    )
    assert assigned.json()["applied"] == 3, assigned.text

    # A hard one waived with four eyes: Ann asks, neither she nor another analyst may approve,
    # a senior analyst does.
    hard = next(item for item in exceptions if item["severity"] == "hard")
    path = f"/api/exceptions/{hard['exception_id']}"
    for action in ("acknowledge", "start"):
        done = await ann.post(f"{path}/{action}", f"exception_action.{action}")
        assert done.status_code == 200, done.text
    asked = await ann.post(
        f"{path}/waive", "exception_action.waive", json={"notes": "investor exception letter"}
    )
    assert asked.json()["status"] == "waiver_pending", asked.text
    own = await ann.post(f"{path}/approve-waiver", "exception_action.approve-waiver", "denied")
    assert own.status_code == 403
    analyst = await bob.post(f"{path}/approve-waiver", "exception_action.approve-waiver", "denied")
    assert analyst.status_code == 403
    approved = await sue.post(
        f"{path}/approve-waiver", "exception_action.approve-waiver", json={"notes": "letter seen"}
    )
    assert approved.json()["status"] == "waived", approved.text

    # A loan corrected: a bought loan's LTV re-read from the appraisal.
    loans = await all_pages(client, "/api/loans", {"run_id": run_id}, ann.headers)
    loan = next(item for item in loans if item["disposition"] == "to_purchase")
    corrected = await ann.post(
        f"/api/loans/{loan['loan_id']}/corrections",
        "correct_loan",
        json={"field": "ltv_ratio", "value": "99", "reason": "LTV re-read from the appraisal"},
    )
    assert corrected.status_code == 202, corrected.text
    await settled(client, f"/api/loans/{loan['loan_id']}/corrections", ann.headers, bool)

    # A partial reprocess of that loan alone, with its correction.
    child = await ann.post(
        f"/api/runs/{run_id}/reprocess",
        "reprocess",
        json={"loan_ids": [loan["loan_id"]], "apply_corrections": True},
    )
    assert child.status_code == 202, child.text
    child_id = child.json()["run_id"]
    assert (await ended(client, child_id, ann.headers))["status"] == "completed"

    # Reconciliation on demand, of the run and of its partial child.
    for reconciled in (run_id, child_id):
        answer = await ann.post(f"/api/runs/{reconciled}/reconciliation", "run_reconciliation")
        assert answer.status_code == 200, answer.text

    story = Story(
        run_id=run_id,
        total_loans=run["total_loans"],
        ids=ids,
        acknowledged=soft,
        waived=hard,
        loan=loan,
        correction_id=corrected.json()["correction_id"],
        child_id=child_id,
        requests=requests,
    )
    # Every request's audit entry, once the projector has folded them all.
    await settled(
        client,
        "/api/admin/audit",
        admin.headers,
        lambda page: set(requests) <= {e["request_id"] for e in page["items"]},
    )
    await check_the_story(admin, ann, story)

    # `projections rebuild`, and the same story from the replayed log, to the same checksum.
    monkeypatch.setenv("DATABASE_URL", e2e_settings.database_dsn)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", e2e_settings.kafka_bootstrap_servers)
    monkeypatch.setenv("TOPIC_PREFIX", e2e_settings.topic_prefix)
    conn = await connect(e2e_settings)
    try:
        await wait_caught_up(e2e_settings, conn, timeout=WAIT_SECONDS)  # the whole log folded
    finally:
        await conn.close()
    before = await cli_json(["projections", "checksum", "--json"])
    rebuilt = await cli_json(["projections", "rebuild", "--timeout", str(WAIT_SECONDS), "--json"])
    assert rebuilt["generation"] >= 1
    after = await cli_json(["projections", "checksum", "--json"])
    assert after["tables"] == before["tables"]
    assert after["checksum"] == before["checksum"]
    await check_the_story(admin, ann, story)


async def cli_json(args: list[str]) -> dict:
    """The last line of a `loan-engine` command's JSON output."""
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


async def check_the_story(admin: Desk, ann: Desk, story: Story) -> None:
    """Every clause of the story, as the read models show it."""
    bob = story.ids["desk.bob"]
    # Acknowledged and assigned.
    mine = await ann.get(
        "/api/exceptions", run_id=story.run_id, status="acknowledged", assignee=bob, limit=1000
    )
    assert sorted(item["exception_id"] for item in mine["items"]) == sorted(story.acknowledged)
    for exception_id in story.acknowledged:
        detail = await ann.get(f"/api/exceptions/{exception_id}")
        assert [(h["action"], h["actor_id"]) for h in detail["history"]] == [
            ("acknowledge", story.ids["desk.ann"]),
            ("assign", story.ids["desk.ann"]),
        ]
    # Waived with four eyes: requested by Ann, approved by Sue; the refusals changed nothing.
    waived = await ann.get(f"/api/exceptions/{story.waived['exception_id']}")
    assert waived["status"] == "waived"
    asker, approver = story.ids["desk.ann"], story.ids["desk.sue"]
    applied = [(h["action"], h["actor_id"], h["to_status"]) for h in waived["history"]]
    assert applied == [
        ("acknowledge", asker, "acknowledged"),
        ("start", asker, "in_progress"),
        ("waive", asker, "waiver_pending"),
        ("approve-waiver", approver, "waived"),
    ]
    untouched = await ann.get("/api/exceptions", run_id=story.run_id, status="new", limit=1)
    assert untouched["items"], "the other exceptions are still new"

    # Corrected, and the partial reprocess's diff moves that loan from bought to rejected.
    loan = story.loan
    corrections = await ann.get(f"/api/loans/{loan['loan_id']}/corrections")
    assert [(c["correction_id"], c["value"], c["previous"]) for c in corrections] == [
        (story.correction_id, "99", loan["ltv_ratio"])
    ]
    child = await ann.get(f"/api/runs/{story.child_id}")
    assert (child["status"], child["parent_run_id"], child["total_loans"]) == (
        "completed",
        story.run_id,
        1,
    )
    diff = await ann.get(f"/api/runs/{story.child_id}/diff")
    assert diff["counts"] == {"changed": 1, "unchanged": 0, "to_purchase->rejected": 1}
    [change] = diff["changes"]
    assert (change["parent_loan_id"], change["seller_loan_number"]) == (
        loan["loan_id"],
        loan["seller_loan_number"],
    )
    assert (change["disposition_before"], change["disposition_after"]) == (
        "to_purchase",
        "rejected",
    )
    assert (change["exceptions_added"], change["exceptions_removed"]) == (["ltv_ratio"], [])
    assert (change["price_before"], change["price_after"]) == (loan["final_price"], None)

    # Clean reconciliation: every source row matches its fact and report rows.
    for run_id, loans in ((story.run_id, story.total_loans), (story.child_id, 1)):
        reconciliation = await ann.get(f"/api/runs/{run_id}/reconciliation")
        assert reconciliation["status"] == "clean", reconciliation
        assert reconciliation["counts"] == {
            "matched": loans,
            "mismatched": 0,
            "source_only": 0,
            "downstream_only": 0,
        }

    # Lineage showing every step, each at its place in the log.
    history = await ann.get(f"/api/loans/{loan['loan_id']}/history")
    assert [event["kind"] for event in history["events"]] == [
        "ingested", "evaluated", "priced", "dispositioned", "corrected"
    ]  # fmt: skip
    assert all(event["offset"] is not None for event in history["events"])
    assert history["events"][-1]["details"]["correction_id"] == story.correction_id
    child_loan = change["loan_id"]
    history = await ann.get(f"/api/loans/{child_loan}/history")
    assert [event["kind"] for event in history["events"]] == [
        "ingested", "evaluated", "priced", "dispositioned"
    ]  # fmt: skip
    assert history["events"][1]["details"]["exceptions"] == ["ltv_ratio"]
    history = await ann.get(f"/api/loans/{story.waived['loan_id']}/history")
    triage = [
        (event["details"]["action"], event["details"]["applied"])
        for event in history["events"]
        if event["kind"] == "triage"
        and event["details"]["exception_id"] == story.waived["exception_id"]
    ]
    # The refused approvals never reach the log: the API turns them away first.
    assert triage == [
        ("acknowledge", True),
        ("start", True),
        ("waive", True),
        ("approve-waiver", True),
    ]
    assert [event["kind"] for event in history["events"]][:4] == [
        "ingested", "evaluated", "priced", "dispositioned"
    ]  # fmt: skip
    for exception_id in story.acknowledged:
        detail = await ann.get(f"/api/exceptions/{exception_id}")
        steps = await ann.get(f"/api/loans/{detail['loan_id']}/history")
        assert [
            event["details"]["action"]
            for event in steps["events"]
            if event["kind"] == "triage" and event["details"]["exception_id"] == exception_id
        ] == ["acknowledge", "assign"]

    # An audit entry for each action, with who did it and how it ended.
    for request_id, (action, outcome) in story.requests.items():
        [entry] = (await admin.get("/api/admin/audit", request_id=request_id))["items"]
        assert (entry["action"], entry["outcome"]) == (action, outcome), request_id
        assert entry["actor_role"] in ("admin", "analyst", "senior_analyst"), entry
