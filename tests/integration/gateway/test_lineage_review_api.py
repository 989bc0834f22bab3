"""Lineage and stages over credit review, with a real broker, projector and database (SPEC §7,
§8): a reviewed loan's history shows its score at its log position, its case's events, its
decision and the triage actions on its exceptions; an auto-decided loan's shows its decision; and
`GET /runs/{id}/stages` counts scored and decided loans from the read models, naming the loans
that still wait for a decision.

The credit desk (two teams' scored runs, the review job, its users) is the review tests' own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from test_review_api import (  # noqa: F401 - module-scoped fixtures of the same harness
    Desk,
    auto_routed,
    case_action,
    decide,
    desk,
    opened,
    queue,
    wait_for,
)

from tests.conftest import run_async
from tests.unit.gateway.review_events import scored_batches

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def topic_prefix(kafka_bootstrap_servers: str, topic_prefix: str) -> Iterator[str]:
    """Topics of this module's own under the desk: its projector reads them from the beginning
    and counts its cases, so the review tests' events must not be there (nor ours in theirs)."""
    from services.cli.stack import topics

    prefix = f"{topic_prefix}{uuid.uuid4().hex[:8]}."
    names = run_async(lambda: topics.ensure_topics(kafka_bootstrap_servers, prefix))
    try:
        yield prefix
    finally:
        run_async(lambda: topics.delete_topics(kafka_bootstrap_servers, names))


async def history(at: Desk, loan_id: str) -> dict[str, Any]:
    response = await at.client.get(f"/api/loans/{loan_id}/history", headers=at.analyst)
    assert response.status_code == 200, response.text
    return response.json()


async def stages_of(at: Desk, run_id: object) -> dict[str, dict[str, Any]]:
    response = await at.client.get(f"/api/runs/{run_id}/stages", headers=at.admin)
    assert response.status_code == 200, response.text
    return {stage["stage"]: stage for stage in response.json()["stages"]}


@pytest.mark.usefixtures("opened")
async def test_a_reviewed_loans_history_shows_its_score_case_decision_and_triage_in_order(
    desk: Desk,  # noqa: F811
) -> None:
    # A pending case whose loan raised exceptions, so both kinds of people's work show.
    triaged: list[str] = []
    for case in (await queue(desk, desk.admin, status="pending", limit=1000))["items"]:
        exceptions = await desk.client.get(
            "/api/exceptions", params={"loan_id": case["loan_id"]}, headers=desk.analyst
        )
        triaged = [item["exception_id"] for item in exceptions.json()["items"]]
        if triaged:
            break
    assert triaged, "some loan routed to a person has exceptions"
    loan_id = case["loan_id"]
    for action in ("assign", "start"):
        done = await case_action(desk, desk.analyst, case["case_id"], action)
        assert done.status_code == 200, done.text
    # With the model's leaning (as the review tests read it), so no second person is needed.
    leaning = (
        {"outcome": "approve", "terms": "standard terms"}
        if case["score"] >= 725
        else {"outcome": "decline", "reasoning": "debt service too thin"}
    )
    decided = await decide(desk, desk.analyst, case["case_id"], **leaning)
    assert decided.status_code == 200, decided.text
    for exception_id in triaged:
        acknowledged = await desk.client.post(
            f"/api/exceptions/{exception_id}/acknowledge",
            json={"notes": "seen in review"},
            headers=desk.analyst,
        )
        assert acknowledged.status_code == 200, acknowledged.text

    body = await wait_for(
        lambda: history(desk, loan_id),
        lambda found: "review.decision_recorded" in [e["event_type"] for e in found["events"]],
    )
    events = body["events"]
    kinds = [event["kind"] for event in events]
    assert kinds[:5] == ["ingested", "evaluated", "priced", "dispositioned", "scored"]
    scored = events[4]
    assert scored["topic"] == desk.settings.topic_prefix + "loans.scored.v1"
    assert scored["partition"] is not None and scored["offset"] is not None
    assert scored["details"]["score"] == case["score"]
    assert scored["details"]["routing_decision"] == "human_review"
    review = [event for event in events if event["kind"] == "review"]
    assert [event["event_type"] for event in review] == [
        "review.case_opened",
        "review.case_assigned",
        "review.case_started",
        "review.decision_recorded",
    ]
    assert {event["details"]["case_id"] for event in review} == {case["case_id"]}
    assert all(event["offset"] is not None for event in review)
    assert review[-1]["details"]["actor_role"] == "analyst"
    triage = [event for event in events if event["kind"] == "triage"]
    assert [event["details"]["exception_id"] for event in triage] == triaged
    assert all(event["details"]["action"] == "acknowledge" for event in triage)
    acted = [event["occurred_at"] for event in events if event["kind"] in ("review", "triage")]
    assert acted == sorted(acted)


@pytest.mark.usefixtures("opened")
async def test_an_auto_routed_loans_history_ends_with_its_automatic_decision(
    desk: Desk,  # noqa: F811
) -> None:
    auto = next(
        event
        for batch in scored_batches(desk.run_a)
        for event in batch.events
        if event.routing.decision != "human_review"
    )
    body = await history(desk, str(auto.loan_id))
    kinds = [event["kind"] for event in body["events"]]
    assert kinds == ["ingested", "evaluated", "priced", "dispositioned", "scored", "decided"]
    decision = body["events"][-1]
    assert decision["details"]["decision_type"] == auto.routing.decision
    assert decision["details"]["status"] == "final"
    # At the log position of its scored batch's auto decisions.
    assert decision["topic"] == desk.settings.topic_prefix + "reviews.v1"
    assert (decision["partition"], decision["batch_seq"]) != (None, None)
    assert decision["offset"] is not None


@pytest.mark.usefixtures("opened")
async def test_stages_count_scored_and_decided_loans_and_name_those_waiting_for_a_person(
    desk: Desk,  # noqa: F811
) -> None:
    run = desk.run_a
    stages = await stages_of(desk, run.run_id)
    assert stages["scored"]["available"] and stages["decided"]["available"]
    assert (stages["scored"]["records_in"], stages["scored"]["records_out"]) == (run.loans,) * 2
    assert (stages["scored"]["stuck"], stages["scored"]["stuck_loan_ids"]) == (0, [])

    def of_run(page: dict) -> list[dict]:
        return [case for case in page["items"] if case["run_id"] == str(run.run_id)]

    waiting = {case["loan_id"] for case in of_run(await queue(desk, desk.admin, limit=1000))}
    closed = of_run(await queue(desk, desk.admin, status="decided", limit=1000))
    decided = stages["decided"]
    assert decided["records_in"] == run.loans
    assert decided["records_out"] == auto_routed(run) + len(closed)
    assert decided["stuck"] == len(waiting) > 0
    assert set(decided["stuck_loan_ids"]) == waiting
