"""The governance screens in Debian's chromium against a real stack (tests/browser/conftest.py):
web/tests/governance.mjs drives a run's pipeline, data quality and reconciliation, the DQ page, a
loan's record editor and lineage, and a correction reprocessed into a child run with its diff;
a screenshot of each screen goes to web/test-artifacts/ and axe checks each."""

from pathlib import Path

import pytest

from services.ingest.tapegen import generate_tape
from tests.browser.conftest import Workbench, run_browser_script
from tests.browser.web import ARTEFACTS

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

LOANS = 60
SCREENS = (
    "gov-pipeline",
    "gov-dq-panel",
    "gov-reconciliation",
    "gov-run-detail",
    "gov-dq-page",
    "gov-loan-record",
    "gov-reprocess-form",
    "gov-run-diff",
    "gov-child-run",
    "gov-child-loan",
)


def test_an_analyst_corrects_a_loan_reprocesses_it_and_sees_the_diff_in_chromium(
    workbench: Workbench, tmp_path: Path
) -> None:
    """The pipeline of a run draws its stages with counts; its DQ and the DQ page show real data; a
    report altered downstream is found by reconciling again, one finding accepted and one
    flagged; a loan's LTV corrected through the record editor and reprocessed alone gives a child
    run whose diff shows it go from to_purchase to rejected; every screen passes axe (no serious
    or critical finding) and runs under the CSP."""
    tape = tmp_path / "tape.csv"
    generate_tape(tape, loans=LOANS, seed=14, bad_share=0.3)
    run_browser_script(
        "tests/governance.mjs",
        workbench.url,
        tape,
        600,
        LOANS=str(LOANS),
        STORAGE_ROOT=str(workbench.storage_root),
    )
    for screen in SCREENS:
        assert (ARTEFACTS / f"{screen}.png").stat().st_size > 0, screen
