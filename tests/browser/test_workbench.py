"""The workbench in Debian's chromium against a real stack: four workers, the projector and the
gateway as processes over the real Kafka and PostgreSQL (tests/browser/conftest.py);
web/tests/e2e.mjs drives the browser (playwright-core) through the screens and saves a screenshot
of each under web/test-artifacts/."""

from pathlib import Path

import pytest

from services.ingest.tapegen import generate_tape
from tests.browser.conftest import run_browser_script
from tests.browser.web import ARTEFACTS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_people_work_a_tape_through_the_workbench_in_chromium(
    gateway_url: str, tmp_path: Path
) -> None:
    """Log in, upload a tape and start a run, watch it complete, download a report, bulk-acknowledge
    exceptions, open an exception and a loan, the admin screens; a sales-team user sees only its
    team's runs; every screen passes axe (no serious or critical finding) and runs under the CSP."""
    tape = tmp_path / "tape.csv"
    generate_tape(tape, loans=60, seed=14, bad_share=0.3)
    run_browser_script("tests/e2e.mjs", gateway_url, tape, 540)
    for screen in ("login", "runs", "run-detail", "exceptions", "exception-detail", "loan"):
        assert (ARTEFACTS / f"{screen}.png").stat().st_size > 0
