"""The golden runs (tests/golden, from shared/golden): the pure chain reproduces every report."""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from contracts.loans import LoanDispositioned
from contracts.runs import REPORT_KEYS
from services.ingest.domain import InMemoryDuplicateIndex, Normaliser
from services.ingest.readers import read_rows
from services.reporting.domain import RunTotals
from services.reporting.reports import write_reports
from tests.factories import process_loan, report_sinks

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
RUN_ID = UUID("6f0d4c8e-3a0b-4e55-9d7e-2a1b3c4d5e6f")
CASES = [("csv", "tape.csv"), ("xlsx", "tape.xlsx")]


def golden_run(folder: str, tape: str) -> tuple[dict[str, bytes], RunTotals, Normaliser]:
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())

    def loans() -> Iterator[LoanDispositioned]:
        with (GOLDEN / folder / tape).open("rb") as stream:
            for record in normaliser.file(tape, read_rows(tape, stream)):
                loan = process_loan(record, run_id=RUN_ID)
                totals.add(loan)
                yield loan

    totals = RunTotals()
    sinks = report_sinks()
    write_reports(loans(), sinks)
    return {key: sink.getvalue() for key, sink in sinks.items()}, totals, normaliser


@pytest.fixture(scope="module", params=CASES, ids=[folder for folder, _ in CASES])
def run(request: pytest.FixtureRequest) -> tuple[str, dict[str, bytes], RunTotals, Normaliser]:
    folder, tape = request.param
    return (folder, *golden_run(folder, tape))


@pytest.mark.parametrize("key", REPORT_KEYS)
def test_each_report_matches_the_golden_bytes(
    run: tuple[str, dict[str, bytes], RunTotals, Normaliser], key: str
) -> None:
    folder, reports, _, _ = run
    expected = (GOLDEN / folder / "expected" / f"{key}.csv").read_bytes()
    assert reports[key].decode("utf-8").splitlines() == expected.decode("utf-8").splitlines()
    assert reports[key] == expected


def test_run_totals_and_report_digests_match_the_golden_run(
    run: tuple[str, dict[str, bytes], RunTotals, Normaliser],
) -> None:
    folder, reports, totals, normaliser = run
    expected = json.loads((GOLDEN / folder / "expected" / "run.json").read_text(encoding="utf-8"))
    assert totals.total_loans == normaliser.total_loans == expected["total_loans"]
    assert str(totals.total_balance) == str(normaliser.total_balance) == expected["total_balance"]
    assert totals.exceptions_count == expected["exceptions_count"]
    assert totals.dispositions().model_dump() == {
        "to_purchase": 0,
        "projected": 0,
        "rejected": 0,
        **expected["dispositions"],
    }
    assert {key: hashlib.sha256(body).hexdigest() for key, body in reports.items()} == expected[
        "sha256"
    ]
