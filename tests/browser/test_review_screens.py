"""The workbench's credit review screens in Debian's chromium against a real stack that scores
loans: the four workers, scoring (a small model trained at start into a registry of its own), the
projector, the review jobs (opening cases every 2 s) and the gateway as processes over the real
Kafka and PostgreSQL. web/tests/review-e2e.mjs drives the browser through the review queue, the
case view, a decision, an override and its approval by a second person, the notification that
tells the analyst, and saves a screenshot and the axe findings of each screen under
web/test-artifacts/."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.ingest.tapegen import generate_tape
from tests.browser.conftest import run_browser_script, running_workbench
from tests.browser.web import ARTEFACTS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SCREENS = (
    "review-queue",
    "review-case",
    "review-case-decided",
    "review-case-override-pending",
    "approvals",
    "review-case-override-approved",
    "notifications",
)


@pytest.fixture(scope="module")
def scoring_gateway_url(
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The whole stack with scoring as processes; the gateway's URL once every one is ready."""
    root = tmp_path_factory.mktemp("review-workbench")
    with running_workbench(
        kafka_bootstrap_servers,
        module_topic_prefix,
        module_database_url,
        root,
        scoring=True,
        extra_env={"GATEWAY_REVIEW_JOB_SECONDS": "2"},
    ) as running:
        yield running.url


def test_an_analyst_decides_review_cases_and_a_senior_approves_the_override_in_chromium(
    scoring_gateway_url: str, tmp_path: Path
) -> None:
    """A scored run opens review cases; an analyst works the queue (assign, start), decides one
    case with the model (conditions, one marked fulfilled) and one against it (a short
    justification refused with the API's message, then an override pending); a senior analyst
    approves the override and a waiver; the analyst reads the notification of it; every screen
    passes axe (no serious or critical finding) under the CSP."""
    tape = tmp_path / "review-tape.csv"
    generate_tape(tape, loans=120, seed=8, bad_share=0.1)
    run_browser_script("tests/review-e2e.mjs", scoring_gateway_url, tape, 900)
    for screen in SCREENS:
        assert (ARTEFACTS / f"{screen}.png").stat().st_size > 0
