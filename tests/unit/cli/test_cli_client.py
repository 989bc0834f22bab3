"""Runs folded from their `runs.v1` events, and the run result the CLI prints (SPEC §6)."""

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from contracts.ids import event_id
from contracts.loans import RunParams
from contracts.runs import (
    REPORT_KEYS,
    DecisionCounts,
    Dispositions,
    OutputsWritten,
    ReportFile,
    RunCompleted,
    RunDecided,
    RunFailed,
    RunRequested,
    RunRetryRequested,
    RunSource,
    RunStarted,
    TapeIngested,
)
from services.cli.client import RunView, apply, fold, result_json
from services.cli.pipeline import exit_code

RUN = UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
PARAMS = RunParams(pdate=date(2026, 11, 23))


def envelope(kind: str, *parts: object) -> dict[str, object]:
    return {
        "event_id": event_id(kind, RUN, *parts),
        "run_id": RUN,
        "occurred_at": AT,
        "producer": "test",
    }


def requested() -> RunRequested:
    return RunRequested(**envelope("run.requested"), params=PARAMS, folder="desk", created_at=AT)


def started(attempt: int = 1) -> RunStarted:
    source = RunSource(kind="folder", location="desk")
    return RunStarted(
        **envelope("run.started", attempt),
        params=PARAMS,
        source=source,
        created_at=AT,
        attempt=attempt,
    )


def ingested() -> TapeIngested:
    return TapeIngested(
        **envelope("run.tape_ingested", 1),
        total_loans=3,
        total_balance=Decimal("650000.00"),
        batch_count=1,
        files=("tape.csv",),
        duplicates=0,
    )


def failed() -> RunFailed:
    return RunFailed(**envelope("run.failed", "ingest", 1), phase="ingest", error="it broke")


def report(key: str) -> ReportFile:
    return ReportFile(
        key=key,
        uri=f"/srv/storage/outputs/{RUN}/{key}.csv",
        storage_key=f"outputs/{RUN}/{key}.csv",
        sha256="0" * 64,
        size=10,
        rows=1,
    )


def completed() -> RunCompleted:
    keys = ("purchase_tape", "projected_tape", "rejection_report", "exception_summary")
    return RunCompleted(
        **envelope("run.completed"),
        total_loans=3,
        total_balance=Decimal("650000.00"),
        exceptions_count=4,
        dispositions=Dispositions(to_purchase=1, projected=1, rejected=1),
        reports=tuple(report(key) for key in keys),
        completed_at=AT,
    )


def test_a_requested_run_is_pending_with_no_result_yet() -> None:
    view = fold([requested()])[RUN]

    assert result_json(view) == {
        "run_id": str(RUN),
        "status": "pending",
        "error": None,
        "total_loans": None,
        "total_balance": None,
        "exceptions_count": None,
        "dispositions": {"to_purchase": 0, "projected": 0, "rejected": 0},
        "reports": {
            "purchase_tape": None,
            "projected_tape": None,
            "rejection_report": None,
            "exception_summary": None,
        },
    }


def test_a_started_run_is_running_and_knows_its_totals_once_ingested() -> None:
    view = fold([requested(), started(), ingested()])[RUN]

    assert view.status == "running"
    assert (view.total_loans, view.total_balance) == (3, Decimal("650000.00"))
    assert view.source == "folder:desk"
    assert not view.finished


def test_a_completed_run_prints_its_counts_reports_and_balance_as_text() -> None:
    view = fold([requested(), started(), ingested(), completed()])[RUN]

    result = result_json(view)
    assert result["status"] == "completed"
    assert result["total_balance"] == "650000.00"
    assert result["exceptions_count"] == 4
    assert result["dispositions"] == {"to_purchase": 1, "projected": 1, "rejected": 1}
    assert result["reports"]["purchase_tape"] == f"/srv/storage/outputs/{RUN}/purchase_tape.csv"
    assert view.finished


def test_a_failed_run_carries_its_error_until_a_retry_starts_it_again() -> None:
    failed_view = fold([requested(), started(), failed()])[RUN]
    retry = RunRetryRequested(**envelope("run.retry_requested", 2), attempt=2, phase="ingest")
    retried = apply(apply(failed_view, retry), started(2))

    assert (failed_view.status, failed_view.error, failed_view.last_phase) == (
        "failed",
        "it broke",
        "ingest",
    )
    assert (retried.status, retried.error, retried.attempt) == ("running", None, 2)


def test_runs_are_kept_apart_by_run_id() -> None:
    other = UUID("11111111-2222-4333-8444-555555555555")
    elsewhere = requested().model_copy(update={"run_id": other})

    runs = fold([requested(), elsewhere, failed()])

    assert list(runs) == [RUN, other]
    assert runs[other].status == "pending"
    assert runs[RUN].status == "failed"
    assert RunView(other).status == "pending"


def outputs() -> OutputsWritten:
    keys = ("purchase_tape", "projected_tape", "rejection_report", "exception_summary")
    return OutputsWritten(
        **envelope("run.outputs_written"),
        reports=tuple(report(key) for key in keys),
        archive_input=(),
        archive_output=(),
    )


def test_a_retried_run_is_pending_at_its_failed_phase_until_it_starts_again() -> None:
    retry = RunRetryRequested(**envelope("run.retry_requested", 2), attempt=2, phase="ingest")
    waiting = fold([requested(), started(), failed(), retry])[RUN]
    restarted = apply(waiting, started(2))

    assert (waiting.status, waiting.last_phase, waiting.attempt) == ("pending", "ingest", 2)
    assert (restarted.status, restarted.last_phase) == ("running", "ingest")


def test_a_running_run_shows_the_phase_of_its_latest_milestone() -> None:
    written = fold([requested(), started(), ingested(), outputs()])[RUN]

    assert (written.status, written.last_phase) == ("running", "ingest")
    assert written.reports["purchase_tape"] == f"/srv/storage/outputs/{RUN}/purchase_tape.csv"
    assert written.dispositions == {}


def test_a_tape_pushed_again_after_completion_stays_completed() -> None:
    view = fold([requested(), started(), ingested(), completed(), started(), ingested()])[RUN]

    assert (view.status, view.last_phase, view.error) == ("completed", "archive", None)
    assert view.finished


def decided() -> RunDecided:
    return RunDecided(
        **envelope("run.decided"),
        decisions=DecisionCounts(auto_approve=1, auto_decline=1, analyst_approve=1),
        bought=2,
        report=report("decision_tape"),
        archive_output=f"archive/{RUN}/output/decision_tape.csv",
        decided_at=AT,
    )


def test_a_decided_run_is_finished_and_lists_its_decision_tape_beside_the_four_reports() -> None:
    view = fold([requested(), started(), ingested(), completed(), decided()])[RUN]

    result = result_json(view)
    assert result["status"] == "decided"
    assert view.finished
    assert list(result["reports"]) == [*REPORT_KEYS, "decision_tape"]
    assert result["reports"]["decision_tape"] == f"/srv/storage/outputs/{RUN}/decision_tape.csv"
    assert exit_code(view) == 0


def test_a_completed_run_lists_only_the_four_reports_until_it_is_decided() -> None:
    view = fold([requested(), started(), ingested(), completed()])[RUN]

    assert list(result_json(view)["reports"]) == list(REPORT_KEYS)
    assert exit_code(view) == 0
