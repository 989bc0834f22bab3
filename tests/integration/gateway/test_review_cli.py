"""`loan-engine review queue | show | assign | start | decide --json` against a real gateway
(uvicorn on a loopback port, the real broker, projector and database): the terminal's credit
desk sees and changes what the API does, and ends with exit code 1 and one line on a refusal."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from conftest import PASSWORD
from test_review_sla_api import Desk, desk  # noqa: F401 (the module's desk fixture)
from typer.testing import CliRunner, Result

from services.cli.main import app
from services.gateway.app import create_app

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(scope="module")
def gateway_url(desk: Desk) -> Iterator[str]:  # noqa: F811
    """The desk's gateway as a real server on a port of this module's block (49000-49009)."""
    application = create_app(desk.settings)
    for port in range(49000, 49010):
        server = uvicorn.Server(
            uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.started:
            break
        thread.join(5)
    else:
        pytest.fail("no free port in 49000-49009 for the gateway")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def environment(url: str, user: str, password: str | None = PASSWORD) -> dict[str, Any]:
    return {"CLI_API_URL": url, "CLI_USERNAME": user, "CLI_PASSWORD": password}


async def review(
    url: str, user: str, *args: str, stdin: str | None = None, **env: Any
) -> tuple[Result, Any]:
    """Run the command in a thread (the projector folds on this loop meanwhile)."""
    variables = {**environment(url, user), **env}
    result = await asyncio.to_thread(
        runner.invoke, app, ["review", *args], env=variables, input=stdin
    )
    lines = result.stdout.strip().splitlines()
    payload = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return result, payload


async def test_the_queue_lists_the_open_cases_as_json(desk: Desk, gateway_url: str) -> None:  # noqa: F811
    result, page = await review(gateway_url, "analyst1", "queue", "--limit", "1000", "--json")
    assert result.exit_code == 0, result.output
    assert page["total"] == len(await desk.cases()) >= 8
    scores = [item["priority_score"] for item in page["items"]]
    assert scores == sorted(scores, reverse=True)
    text, _ = await review(gateway_url, "analyst1", "queue", "--limit", "3")
    assert text.exit_code == 0 and f"3 of {page['total']} cases" in text.stdout


async def test_an_analyst_assigns_starts_and_decides_a_case_from_the_terminal(
    desk: Desk,  # noqa: F811
    gateway_url: str,
) -> None:
    case = (await desk.cases(status="pending"))[0]
    cid = case["case_id"]
    result, assigned = await review(gateway_url, "analyst2", "assign", cid, "--json")
    assert result.exit_code == 0, result.output
    assert (assigned["status"], assigned["assignee"]) == ("assigned", desk.ids["analyst2"])
    result, started = await review(
        gateway_url, "analyst2", "start", cid, "--json", stdin=f"{PASSWORD}\n"
    )
    assert started["status"] == "in_progress"
    with_model = (
        ["--outcome", "approve_with_conditions", "--condition", "documentation:Two pay stubs"]
        if case["score"] >= 725
        else ["--outcome", "decline", "--reasoning", "Debt load too high for the income"]
    )
    result, decided = await review(gateway_url, "analyst2", "decide", cid, *with_model, "--json")
    assert result.exit_code == 0, result.output
    assert decided["status"] == "decided"
    result, shown = await review(gateway_url, "analyst1", "show", cid, "--json")
    assert [d["decision_type"] for d in shown["decisions"]] in (
        ["analyst_approve_with_conditions"],
        ["analyst_decline"],
    )
    assert [event["action"] for event in shown["history"]][-3:] == ["assign", "start", "decide"]
    text, _ = await review(gateway_url, "analyst1", "show", cid)
    assert text.exit_code == 0 and cid in text.stdout and "decide" in text.stdout


async def test_a_refusal_ends_with_exit_code_one_and_the_apis_reason(
    desk: Desk,  # noqa: F811
    gateway_url: str,
) -> None:
    cid = (await desk.cases(status="pending"))[0]["case_id"]
    result, _ = await review(gateway_url, "analyst1", "start", cid)
    assert result.exit_code == 1
    assert "409" in result.stderr and "pending" in result.stderr
    wrong, _ = await review(gateway_url, "analyst1", "queue", CLI_PASSWORD="not the password")
    assert wrong.exit_code == 1 and "401" in wrong.stderr
    bad, _ = await review(
        gateway_url, "analyst1", "decide", cid, "--outcome", "approve", "--condition", "no colon"
    )
    assert bad.exit_code == 2
    nobody, _ = await review(gateway_url, "analyst1", "queue", CLI_API_URL="http://127.0.0.1:49099")
    assert nobody.exit_code == 1 and "cannot reach the gateway" in nobody.stderr
    anonymous, _ = await review(gateway_url, "", "queue", CLI_USERNAME="")
    assert anonymous.exit_code == 1 and "--user" in anonymous.stderr
