"""Summary, exceptions (list, filters, paging, CSV and XLSX exports) and loans through HTTP."""

import csv
import io
from collections import Counter

import httpx
import pytest
from conftest import World
from openpyxl import load_workbook

from services.gateway.facts.exports import escape_cell
from services.gateway.paging import encode_cursor
from services.rules.domain import run_quality
from tests.unit.gateway.gateway_events import RunScenario

pytestmark = pytest.mark.integration


def expected_exceptions(scenario: RunScenario, *, exported: bool = False) -> list[tuple[str, str]]:
    """(seller_loan_number, exception_type) of a run's exceptions in tape order; as exported,
    a seller loan number that looks like a formula starts with `'`."""
    return [
        (
            escape_cell(event.loan.fields.seller_loan_number)
            if exported
            else event.loan.fields.seller_loan_number,
            exc.exception_type,
        )
        for event in scenario.dispositioned()
        for exc in event.exceptions
    ]


async def test_the_summary_agrees_with_the_runs_loans(
    client: httpx.AsyncClient, world: World
) -> None:
    run = world.run_a1
    response = await client.get(f"/api/summary/{run.run_id}", headers=world.sales_a)
    assert response.status_code == 200
    body = response.json()
    events = run.dispositioned()
    counts = run.disposition_counts()
    checks = body["eligibility_checks"]
    assert body["total_loans"] == 30
    assert body["exceptions_count"] == sum(len(e.exceptions) for e in events)
    assert checks["total_loans"] == 30
    assert checks["to_purchase"] == counts["to_purchase"]
    assert checks["projected"] == counts["projected"]
    assert checks["rejected"] == counts["rejected"]
    assert checks["eligible"] == counts["to_purchase"] + counts["projected"]
    by_type = Counter(exc.exception_type for e in events for exc in e.exceptions)
    assert checks["exceptions_by_type"] == dict(by_type)
    by_severity = Counter(exc.severity for e in events for exc in e.exceptions)
    assert checks["exceptions_by_severity"] == {
        "hard": by_severity["hard"],
        "soft": by_severity["soft"],
    }
    quality = run_quality(e.quality for e in events)
    assert checks["dq"] == {
        "completeness": str(quality.completeness),
        "validity": str(quality.validity),
        "uniqueness": str(quality.uniqueness),
        "conformance": str(quality.conformance),
        "dq_score": str(quality.dq_score),
    }


async def test_another_teams_summary_exceptions_and_loans_answer_404(
    client: httpx.AsyncClient, world: World
) -> None:
    run_id = world.run_a1.run_id
    for path, params in (
        (f"/api/summary/{run_id}", {}),
        ("/api/exceptions", {"run_id": str(run_id)}),
        ("/api/exceptions/export", {"run_id": str(run_id)}),
        ("/api/loans", {"run_id": str(run_id)}),
    ):
        response = await client.get(path, params=params, headers=world.sales_b)
        assert response.status_code == 404, path
    listed = await client.get(
        "/api/exceptions", params={"run_id": str(run_id)}, headers=world.analyst
    )
    exception_id = listed.json()["items"][0]["exception_id"]
    detail = await client.get(f"/api/exceptions/{exception_id}", headers=world.sales_b)
    assert detail.status_code == 404
    for action in ("comment", "acknowledge", "waive"):
        probe = await client.post(
            f"/api/exceptions/{exception_id}/{action}", headers=world.sales_b, json={"notes": "x"}
        )
        assert probe.status_code == 404, action
    bulk = await client.post(
        "/api/exceptions/bulk/comment",
        headers=world.sales_b,
        json={"filter": {"run_id": str(run_id)}, "notes": "x"},
    )
    assert bulk.status_code == 404


async def test_exceptions_of_a_run_come_in_tape_order(
    client: httpx.AsyncClient, world: World
) -> None:
    run = world.run_a1
    response = await client.get(
        "/api/exceptions", params={"run_id": str(run.run_id), "limit": 1000}, headers=world.analyst
    )
    items = response.json()["items"]
    assert [(i["seller_loan_number"], i["exception_type"]) for i in items] == expected_exceptions(
        run
    )
    assert response.json()["next_cursor"] is None
    first = items[0]
    assert set(first) >= {"exception_type", "category", "severity", "message", "rejection_criteria"}


async def test_exceptions_filter_by_type_severity_and_criteria(
    client: httpx.AsyncClient, world: World
) -> None:
    run_id = str(world.run_a1.run_id)
    for params, field, value in (
        ({"exception_type": "dti_ratio"}, "exception_type", "dti_ratio"),
        ({"severity": "soft"}, "severity", "soft"),
        (
            {"rejection_criteria": "notebook.missing_required_fields"},
            "rejection_criteria",
            "notebook.missing_required_fields",
        ),
    ):
        response = await client.get(
            "/api/exceptions", params={"run_id": run_id, **params}, headers=world.analyst
        )
        items = response.json()["items"]
        assert items, params
        assert {item[field] for item in items} == {value}


async def test_exceptions_without_a_run_come_newest_run_first_and_stay_in_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    everything = await client.get("/api/exceptions", params={"limit": 1000}, headers=world.admin)
    runs = [item["run_id"] for item in everything.json()["items"]]
    order = list(dict.fromkeys(runs))
    known = [str(s.run_id) for s in (world.running, world.run_n1, world.run_b1, world.run_a1)]
    assert [r for r in order if r in known] == known
    mine = await client.get("/api/exceptions", params={"limit": 1000}, headers=world.sales_b)
    assert {item["run_id"] for item in mine.json()["items"]} == {str(world.run_b1.run_id)}


async def test_exceptions_keyset_paging_matches_one_big_page(
    client: httpx.AsyncClient, world: World
) -> None:
    whole = await client.get("/api/exceptions", params={"limit": 1000}, headers=world.admin)
    expected = [(i["loan_id"], i["exception_type"]) for i in whole.json()["items"]]
    walked: list[tuple[str, str]] = []
    params: dict[str, object] = {"limit": 3}
    while True:
        page = (await client.get("/api/exceptions", params=params, headers=world.admin)).json()
        walked.extend((i["loan_id"], i["exception_type"]) for i in page["items"])
        if page["next_cursor"] is None:
            break
        params = {"limit": 3, "after": page["next_cursor"]}
    assert walked == expected


async def test_the_csv_export_streams_the_filtered_exceptions_with_formulas_escaped(
    client: httpx.AsyncClient, world: World
) -> None:
    run = world.run_a1
    response = await client.get(
        "/api/exceptions/export", params={"run_id": str(run.run_id)}, headers=world.sales_a
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="exceptions_export.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    found = [(r["seller_loan_number"], r["exception_type"]) for r in rows]
    assert found == expected_exceptions(run, exported=True)
    assert ("'=SUM(13)", "invalid_field") in found
    limited = await client.get(
        "/api/exceptions/export",
        params={"run_id": str(run.run_id), "limit": 2},
        headers=world.sales_a,
    )
    assert len(list(csv.DictReader(io.StringIO(limited.text)))) == 2


async def test_the_xlsx_export_opens_as_a_workbook_of_the_same_rows(
    client: httpx.AsyncClient, world: World
) -> None:
    run = world.run_a1
    response = await client.get(
        "/api/exceptions/export",
        params={"run_id": str(run.run_id), "format": "xlsx"},
        headers=world.analyst,
    )
    assert response.status_code == 200
    assert 'filename="exceptions_export.xlsx"' in response.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    found = [
        (row[header.index("seller_loan_number")], row[header.index("exception_type")])
        for row in rows[1:]
    ]
    assert found == expected_exceptions(run, exported=True)
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


@pytest.mark.parametrize("params", [{"limit": 50_001}, {"limit": 0}, {"format": "pdf"}])
async def test_bad_export_parameters_answer_422(
    client: httpx.AsyncClient, world: World, params: dict[str, object]
) -> None:
    response = await client.get("/api/exceptions/export", params=params, headers=world.admin)
    assert response.status_code == 422


async def test_loans_without_a_run_id_answer_422(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/api/loans", headers=world.admin)
    assert response.status_code == 422
    assert response.json()["details"][0]["loc"] == ["query", "run_id"]


async def test_loans_come_in_tape_order_with_their_data_and_disposition(
    client: httpx.AsyncClient, world: World
) -> None:
    run = world.run_a1
    response = await client.get(
        "/api/loans", params={"run_id": str(run.run_id), "limit": 1000}, headers=world.sales_a
    )
    items = response.json()["items"]
    events = run.dispositioned()
    assert [i["loan_id"] for i in items] == [str(e.loan.loan_id) for e in events]
    assert [i["disposition"] for i in items] == [e.disposition for e in events]
    first, event = items[0], events[0]
    assert first["seq"] == 1
    assert first["loan_amount"] == event.loan.fields.loan_amount
    assert first["extra"] == {"state": "NY"}
    priced = next(i for i, e in zip(items, events, strict=True) if e.pricing)
    assert priced["final_price"] is not None
    invalid = items[12]
    assert invalid["invalid_fields"] == ["loan_amount"]
    assert invalid["loan_amount"] == "=HYPERLINK(1)"


async def test_loans_filter_by_disposition_and_page_by_cursor(
    client: httpx.AsyncClient, world: World
) -> None:
    run = world.run_a1
    rejected = [str(e.loan.loan_id) for e in run.dispositioned() if e.disposition == "rejected"]
    walked: list[str] = []
    params: dict[str, object] = {"run_id": str(run.run_id), "disposition": "rejected", "limit": 4}
    while True:
        page = (await client.get("/api/loans", params=params, headers=world.analyst)).json()
        walked.extend(item["loan_id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        params = {**params, "after": page["next_cursor"]}
    assert walked == rejected


@pytest.mark.parametrize(
    ("path", "kind", "key"),
    [
        ("/api/loans", "loans", [10**30]),
        ("/api/exceptions", "exceptions", [10**30, "00000000-0000-0000-0000-000000000000", 1, 1]),
        ("/api/exceptions", "exceptions", [1, "00000000-0000-0000-0000-000000000000", 1, 2**15]),
    ],
)
async def test_a_well_formed_cursor_holding_an_out_of_range_number_answers_400(
    client: httpx.AsyncClient, world: World, path: str, kind: str, key: list[object]
) -> None:
    params = {"run_id": str(world.run_a1.run_id), "after": encode_cursor(kind, key)}
    response = await client.get(path, params=params, headers=world.analyst)
    assert (response.status_code, response.json()["error"]) == (400, "Invalid cursor")


async def test_sales_teams_and_config_are_served_to_any_user(
    client: httpx.AsyncClient, world: World
) -> None:
    teams = await client.get("/api/sales-teams", headers=world.analyst)
    assert {"team-a", "team-b"} <= {team["id"] for team in teams.json()}
    mine = await client.get("/api/sales-teams", headers=world.sales_a)
    assert [team["id"] for team in mine.json()] == ["team-a"]
    config = await client.get("/api/config", headers=world.sales_a)
    assert config.json() == {"storage_type": "local", "s3_bucket": None, "environment": "test"}
