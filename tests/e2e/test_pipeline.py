"""The pipeline as a user drives it: four worker processes, real Kafka and PostgreSQL, the CLI.

Every report is compared byte for byte with the reports the pure chain (readers -> Normaliser ->
rules -> pricing -> disposition -> ReportWriter) computes inside the test from the same tape.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.ids import tape_run_id
from contracts.loans import LoanDispositioned, LoanRecord
from contracts.runs import REPORT_KEYS
from services.cli.stack import supervisor
from services.cli.tape import tape_rows
from services.ingest.domain import InMemoryDuplicateIndex, Normaliser
from services.ingest.readers import read_rows
from services.ingest.tapegen import generate_tape
from services.reporting.domain import RunTotals
from services.reporting.reports import write_reports
from services.rules.domain import load_rule_set
from tests.factories import process_loan, report_sinks
from tests.net import answers, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("workers")]

PROJECT = Path(__file__).resolve().parents[2]
GOLDEN = PROJECT / "tests" / "golden"
WORKERS = {
    "ingest": "services.ingest.main",
    "rules": "services.rules.main",
    "pricing": "services.pricing.main",
    "reporting": "services.reporting.main",
}
WAIT_SECONDS = 240
EXPECTED_RUN = UUID("00000000-0000-4000-8000-000000000000")


@pytest.fixture(scope="module")
def stack_env(
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """The infrastructure variables every worker and every CLI call gets."""
    root = tmp_path_factory.mktemp("e2e")
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": topic_prefix,
        "DATABASE_URL": database_url,
        "STORAGE_TYPE": "local",
        "STORAGE_ROOT": str(root / "storage"),
        "INGEST_STATE_DIR": str(root / "ingest-state"),
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="module")
def workers(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The four workers as separate processes, each ready (broker, storage, database) or fail."""
    logs = tmp_path_factory.mktemp("e2e-logs")
    spawned: dict[str, supervisor.Spawned] = {}
    urls: dict[str, str] = {}
    try:
        for name, module in WORKERS.items():
            port = free_port()
            env = {**stack_env, f"{name.upper()}_HTTP_PORT": str(port)}
            argv = [sys.executable, "-m", module]
            spawned[name] = supervisor.spawn(argv, logs / f"{name}.log", env=env, cwd=PROJECT)
            urls[name] = f"http://127.0.0.1:{port}/health/ready"
        for name, url in urls.items():
            if not supervisor.wait_until(lambda url=url: answers(url), timeout=120):
                pytest.fail(f"{name} never became ready:\n{supervisor.tail(logs / f'{name}.log')}")
        yield
    finally:
        for process in spawned.values():
            supervisor.stop(process)


def loan_engine(env: dict[str, str], *arguments: str) -> tuple[int, dict[str, Any]]:
    """Run the CLI; its exit code and the JSON object on the last line of its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *arguments],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS + 60,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output (exit {done.returncode}):\n{done.stderr}"
    return done.returncode, json.loads(lines[-1])


@dataclass(frozen=True)
class Expected:
    """A run's reports and facts as the pure chain computes them."""

    reports: dict[str, bytes]
    total_loans: int
    total_balance: str
    exceptions_count: int
    dispositions: dict[str, int]


def expected_run(records: Iterable[LoanRecord], normaliser: Normaliser) -> Expected:
    totals = RunTotals()
    rule_set = load_rule_set()

    def loans() -> Iterator[LoanDispositioned]:
        for record in records:
            loan = process_loan(record, rule_set=rule_set, run_id=EXPECTED_RUN)
            totals.add(loan)
            yield loan

    sinks = report_sinks()
    write_reports(loans(), sinks)
    return Expected(
        reports={key: sink.getvalue() for key, sink in sinks.items()},
        total_loans=normaliser.total_loans,
        total_balance=str(normaliser.total_balance),
        exceptions_count=totals.exceptions_count,
        dispositions=totals.dispositions().model_dump(),
    )


def expected_from_file(path: Path) -> Expected:
    """The reports of a run over one file, by the pure chain."""
    normaliser = Normaliser(EXPECTED_RUN, InMemoryDuplicateIndex())
    with path.open("rb") as stream:
        return expected_run(normaliser.file(path.name, read_rows(path.name, stream)), normaliser)


def expected_from_push(path: Path, tape_id: str) -> Expected:
    """The reports of a producer's push of one file (rows as `tape push` sends them)."""
    normaliser = Normaliser(EXPECTED_RUN, InMemoryDuplicateIndex())
    with path.open("rb") as stream:
        rows = tape_rows(read_rows(path.name, stream))
        return expected_run(normaliser.tape(f"{tape_id}.csv", rows), normaliser)


def assert_run_matches(code: int, result: dict[str, Any], expected: Expected) -> None:
    assert (code, result["status"], result["error"]) == (0, "completed", None), result
    assert result["total_loans"] == expected.total_loans
    assert result["total_balance"] == expected.total_balance
    assert result["exceptions_count"] == expected.exceptions_count
    assert result["dispositions"] == expected.dispositions
    for key in REPORT_KEYS:
        location = Path(result["reports"][key])
        assert location.is_absolute()
        assert location.read_bytes() == expected.reports[key], key


@pytest.fixture(scope="module", params=["csv", "xlsx"])
def generated_tape(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A few thousand generated loans with a share of bad rows, as CSV or XLSX."""
    path = tmp_path_factory.mktemp("tapes") / f"generated.{request.param}"
    generate_tape(path, 3000, 20261123, 0.1)
    return path


def test_a_generated_tape_through_the_file_path_produces_the_expected_reports(
    stack_env: dict[str, str], generated_tape: Path
) -> None:
    expected = expected_from_file(generated_tape)

    code, result = loan_engine(
        stack_env, "run", str(generated_tape), "--wait", str(WAIT_SECONDS), "--json"
    )

    assert_run_matches(code, result, expected)


def test_a_generated_tape_through_the_producer_path_produces_the_expected_reports(
    stack_env: dict[str, str], generated_tape: Path
) -> None:
    tape_id = f"T-e2e-{uuid4().hex[:8]}"
    expected = expected_from_push(generated_tape, tape_id)

    code, result = loan_engine(
        stack_env,
        "tape",
        "push",
        str(generated_tape),
        "--tape-id",
        tape_id,
        "--wait",
        str(WAIT_SECONDS),
        "--json",
    )

    assert result["run_id"] == str(tape_run_id(tape_id))
    assert_run_matches(code, result, expected)


@pytest.mark.parametrize("folder", ["csv", "xlsx"])
def test_the_golden_tapes_come_out_of_the_real_pipeline_byte_for_byte(
    stack_env: dict[str, str], folder: str
) -> None:
    tape = next((GOLDEN / folder).glob("tape.*"))
    golden = json.loads((GOLDEN / folder / "expected" / "run.json").read_text(encoding="utf-8"))

    code, result = loan_engine(stack_env, "run", str(tape), "--wait", str(WAIT_SECONDS), "--json")

    assert (code, result["status"]) == (0, "completed"), result
    assert result["total_loans"] == golden["total_loans"]
    assert result["total_balance"] == golden["total_balance"]
    assert result["exceptions_count"] == golden["exceptions_count"]
    assert {k: v for k, v in result["dispositions"].items() if v} == golden["dispositions"]
    for key in REPORT_KEYS:
        report = Path(result["reports"][key]).read_bytes()
        assert report == (GOLDEN / folder / "expected" / f"{key}.csv").read_bytes(), key


def test_the_golden_csv_pushed_by_a_producer_gives_the_same_reports(
    stack_env: dict[str, str],
) -> None:
    # Tape id `tape` makes the producer's source file `tape.csv`, as the golden file is named.
    code, result = loan_engine(
        stack_env,
        "tape",
        "push",
        str(GOLDEN / "csv" / "tape.csv"),
        "--wait",
        str(WAIT_SECONDS),
        "--json",
    )

    assert (code, result["status"]) == (0, "completed"), result
    for key in REPORT_KEYS:
        report = Path(result["reports"][key]).read_bytes()
        assert report == (GOLDEN / "csv" / "expected" / f"{key}.csv").read_bytes(), key


def test_a_run_over_an_empty_folder_fails_with_a_clear_error_and_exit_code_one(
    stack_env: dict[str, str],
) -> None:
    code, result = loan_engine(
        stack_env, "run", "--folder", f"nothing-{uuid4().hex[:8]}", "--wait", "60", "--json"
    )

    assert (code, result["status"]) == (1, "failed")
    assert "is empty" in result["error"]


def test_runs_wait_and_runs_show_print_the_result_of_a_finished_run(
    stack_env: dict[str, str],
) -> None:
    _, started = loan_engine(stack_env, "run", "--folder", "missing-folder", "--json")
    run_id = started["run_id"]
    assert started["status"] == "pending"

    waited_code, waited = loan_engine(
        stack_env, "runs", "wait", run_id, "--timeout", "60", "--json"
    )
    shown_code, shown = loan_engine(stack_env, "runs", "show", run_id, "--json")
    _, listed = loan_engine(stack_env, "runs", "list", "--json")

    assert (waited_code, waited["status"]) == (1, "failed")
    assert (shown_code, shown) == (1, waited)
    assert run_id in {run["run_id"] for run in listed["runs"]}
