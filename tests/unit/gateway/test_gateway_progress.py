"""A run's progress per phase, overall and time left (pure)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.gateway.runs.progress import ProgressFacts, StageCount, run_progress

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def facts(**overrides: object) -> ProgressFacts:
    values: dict[str, object] = {
        "status": "running",
        "failed_phase": None,
        "started_at": T0,
        "tape_ingested_at": None,
        "outputs_written_at": None,
        "completed_at": None,
        "total_loans": None,
        "reports_written": 0,
        "archived_files": None,
        "stages": {},
    }
    values.update(overrides)
    return ProgressFacts(**values)  # type: ignore[arg-type]


def by_phase(progress: object) -> dict[str, object]:
    return {phase.phase: phase for phase in progress.phases}  # type: ignore[attr-defined]


def test_a_run_still_ingesting_counts_ingested_loans_without_a_total() -> None:
    stages = {"ingested": StageCount(500, T0, T0)}
    progress = run_progress(facts(stages=stages), T0 + timedelta(seconds=10))
    ingest = by_phase(progress)["ingest"]
    assert (ingest.status, ingest.processed, ingest.total) == ("running", 500, None)
    assert ingest.duration_seconds == Decimal("10.000")
    assert progress.overall_percent == Decimal("0.00")
    assert progress.estimated_seconds_left is None


def test_halfway_through_the_loan_phases_the_percentage_and_eta_follow() -> None:
    stages = {
        "ingested": StageCount(1000, T0, T0 + timedelta(seconds=5)),
        "evaluated": StageCount(1000, T0, T0 + timedelta(seconds=6)),
        "priced": StageCount(500, T0, T0 + timedelta(seconds=7)),
    }
    now = T0 + timedelta(seconds=40)
    progress = run_progress(
        facts(stages=stages, total_loans=1000, tape_ingested_at=T0 + timedelta(seconds=5)), now
    )
    phases = by_phase(progress)
    assert phases["ingest"].status == "completed"
    assert phases["validate"].status == phases["eligibility"].status == "completed"
    assert phases["validate"].completed_at == T0 + timedelta(seconds=6)
    assert (phases["pricing"].status, phases["pricing"].processed) == ("running", 500)
    assert phases["disposition"].status == "pending"
    # (1 + 1 + 1 + 0.5 + 0 + 0 + 0) / 7
    assert progress.overall_percent == Decimal("50.00")
    assert progress.estimated_seconds_left == 40


def test_a_completed_run_is_at_a_hundred_with_nothing_left() -> None:
    stages = {stage: StageCount(10, T0, T0) for stage in ("ingested", "evaluated", "priced")}
    stages["dispositioned"] = StageCount(10, T0, T0 + timedelta(seconds=3))
    done = T0 + timedelta(seconds=4)
    progress = run_progress(
        facts(
            status="completed",
            stages=stages,
            total_loans=10,
            tape_ingested_at=T0,
            outputs_written_at=done,
            completed_at=done,
            reports_written=4,
            archived_files=5,
        ),
        T0 + timedelta(days=1),
    )
    phases = by_phase(progress)
    assert {phase.status for phase in progress.phases} == {"completed"}
    assert phases["output"].processed == 4
    assert phases["archive"].processed == phases["archive"].total == 5
    assert phases["output"].duration_seconds == Decimal("1.000")
    assert (progress.overall_percent, progress.estimated_seconds_left) == (Decimal("100.00"), 0)


def test_a_failed_run_marks_only_its_failed_phase() -> None:
    stages = {"ingested": StageCount(10, T0, T0), "evaluated": StageCount(10, T0, T0)}
    progress = run_progress(
        facts(
            status="failed",
            failed_phase="pricing",
            stages=stages,
            total_loans=10,
            tape_ingested_at=T0,
            completed_at=T0,
        ),
        T0,
    )
    statuses = {phase.phase: phase.status for phase in progress.phases}
    assert statuses["pricing"] == "failed"
    assert statuses["validate"] == "completed"
    assert statuses["disposition"] == "pending"
    assert progress.estimated_seconds_left is None


def test_an_empty_tape_completes_its_loan_phases_at_once() -> None:
    progress = run_progress(facts(total_loans=0, tape_ingested_at=T0), T0)
    statuses = {phase.phase: phase.status for phase in progress.phases}
    assert statuses["disposition"] == "completed"
    assert statuses["output"] == "running"
