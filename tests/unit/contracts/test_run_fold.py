"""The one fold of a run's `runs.v1` events (pure): in order, replayed, and out of order."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from contracts.ids import event_id
from contracts.loans import RunParams
from contracts.run_fold import RunFacts, apply, fold, later_phase
from contracts.runs import (
    REPORT_KEYS,
    DecisionCounts,
    Dispositions,
    OutputsWritten,
    Phase,
    ReportFile,
    RunCompleted,
    RunDecided,
    RunFailed,
    RunReprocessRequested,
    RunRequested,
    RunRetryRequested,
    RunSource,
    RunStarted,
    TapeIngested,
)

RUN = UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
PARENT = UUID("11111111-2222-4333-8444-555555555555")
CREATED_AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
PARAMS = RunParams(irr_target=Decimal("7.5"), pdate=date(2026, 11, 23), sales_team_id="team-a")


@dataclass
class Log:
    """Builds one run's events, each a second after the one before."""

    seconds: int = 0
    events: list[object] = field(default_factory=list)

    def _envelope(self, kind: str, *parts: object) -> dict[str, object]:
        self.seconds += 1
        return {
            "event_id": event_id(kind, RUN, *parts),
            "run_id": RUN,
            "occurred_at": CREATED_AT + timedelta(seconds=self.seconds),
            "producer": "test",
        }

    def requested(self) -> RunRequested:
        return RunRequested(
            **self._envelope("run.requested"),
            params=PARAMS,
            folder="desk",
            requested_by="ann",
            created_at=CREATED_AT,
        )

    def reprocess(self) -> RunReprocessRequested:
        return RunReprocessRequested(
            **self._envelope("run.reprocess_requested"),
            params=PARAMS,
            parent_run_id=PARENT,
            requested_by="ann",
            created_at=CREATED_AT,
        )

    def started(self, attempt: int = 1, kind: str = "folder", location: str = "desk") -> RunStarted:
        return RunStarted(
            **self._envelope("run.started", attempt),
            params=PARAMS,
            source=RunSource(kind=kind, location=location),  # type: ignore[arg-type]
            created_at=CREATED_AT,
            attempt=attempt,
        )

    def ingested(self, loans: int = 3) -> TapeIngested:
        return TapeIngested(
            **self._envelope("run.tape_ingested"),
            total_loans=loans,
            total_balance=Decimal("650000.00"),
            batch_count=1,
            files=("tape.csv",),
            duplicates=0,
        )

    def failed(self, phase: Phase = "ingest", attempt: int = 1) -> RunFailed:
        return RunFailed(
            **self._envelope("run.failed", phase, attempt),
            phase=phase,
            error=f"{phase} broke",
            attempt=attempt,
        )

    def retry(self, attempt: int = 2, phase: Phase = "ingest") -> RunRetryRequested:
        return RunRetryRequested(
            **self._envelope("run.retry_requested", attempt), attempt=attempt, phase=phase
        )

    def outputs(self) -> OutputsWritten:
        return OutputsWritten(
            **self._envelope("run.outputs_written"),
            reports=reports(),
            archive_input=(f"archive/{RUN}/input/tape.csv",),
            archive_output=tuple(f"archive/{RUN}/output/{key}.csv" for key in REPORT_KEYS),
        )

    def completed(self) -> RunCompleted:
        envelope = self._envelope("run.completed")
        return RunCompleted(
            **envelope,
            total_loans=3,
            total_balance=Decimal("650000.00"),
            exceptions_count=4,
            dispositions=Dispositions(to_purchase=1, projected=1, rejected=1),
            reports=reports(),
            completed_at=envelope["occurred_at"],  # type: ignore[arg-type]
        )

    def decided(self) -> RunDecided:
        envelope = self._envelope("run.decided")
        return RunDecided(
            **envelope,
            decisions=DecisionCounts(auto_approve=1, auto_decline=1, analyst_approve=1),
            bought=2,
            report=ReportFile(
                key="decision_tape",
                uri=f"/srv/storage/outputs/{RUN}/decision_tape.csv",
                storage_key=f"outputs/{RUN}/decision_tape.csv",
                sha256="1" * 64,
                size=10,
                rows=2,
            ),
            archive_output=f"archive/{RUN}/output/decision_tape.csv",
            decided_at=envelope["occurred_at"],  # type: ignore[arg-type]
        )

    def completed_run(self) -> list[object]:
        return [self.requested(), self.started(), self.ingested(), self.outputs(), self.completed()]


def reports(root: str = "/srv/storage") -> tuple[ReportFile, ...]:
    return tuple(
        ReportFile(
            key=key,
            uri=f"{root}/outputs/{RUN}/{key}.csv",
            storage_key=f"outputs/{RUN}/{key}.csv",
            sha256="0" * 64,
            size=10,
            rows=1,
        )
        for key in REPORT_KEYS
    )


def run_of(events: list[object], run: RunFacts | None = None) -> RunFacts:
    return fold(events, run or RunFacts(RUN))


def test_a_requested_run_is_pending_with_its_source_and_parameters() -> None:
    run = run_of([Log().requested()])

    assert run.status == "pending"
    assert (run.source_kind, run.source_location, run.folder) == ("folder", "desk", "desk")
    assert (run.irr_target, run.pdate, run.sales_team_id) == (
        Decimal("7.5"),
        date(2026, 11, 23),
        "team-a",
    )
    assert (run.created_at, run.requested_by, run.last_phase) == (CREATED_AT, "ann", None)


def test_a_reprocess_request_names_its_parent_as_the_source() -> None:
    run = run_of([Log().reprocess()])

    assert (run.source_kind, run.source_location) == ("archive", str(PARENT))
    assert run.parent_run_id == PARENT
    assert run.folder is None


def test_a_reprocess_keeps_the_rule_set_version_it_asked_for_through_its_start() -> None:
    log = Log()
    what_if = PARAMS.model_copy(update={"rule_set_version": "2026.12.1"})
    requested = log.reprocess().model_copy(update={"params": what_if})

    assert run_of([requested]).rule_set_version == "2026.12.1"
    # Ingest's start repeats the parameters; one without the version does not erase it.
    assert run_of([requested, log.started()]).rule_set_version == "2026.12.1"
    assert run_of([log.requested()]).rule_set_version is None


def test_a_started_run_is_running_at_the_ingest_phase() -> None:
    log = Log()
    requested, started = log.requested(), log.started()

    run = run_of([requested, started])

    assert (run.status, run.last_phase, run.attempt) == ("running", "ingest", 1)
    assert run.started_at == started.occurred_at


def test_a_completed_run_carries_its_final_facts_and_reports() -> None:
    log = Log()
    events = log.completed_run()

    run = run_of(events)

    assert (run.status, run.last_phase, run.error) == ("completed", "archive", None)
    assert (run.total_loans, run.total_balance, run.exceptions_count) == (
        3,
        Decimal("650000.00"),
        4,
    )
    assert (run.to_purchase, run.projected, run.rejected) == (1, 1, 1)
    assert [report.key for report in run.reports] == list(REPORT_KEYS)
    assert run.archive_input == (f"archive/{RUN}/input/tape.csv",)
    assert run.completed_at == events[-1].occurred_at  # type: ignore[attr-defined]
    assert run.ended


def test_the_latest_reports_replace_the_earlier_ones() -> None:
    log = Log()
    moved = log.completed().model_copy(update={"reports": reports("s3://bucket")})

    run = run_of([log.requested(), log.started(), log.ingested(), log.outputs(), moved])

    assert {report.uri.split("/outputs")[0] for report in run.reports} == {"s3://bucket"}


def test_a_failed_run_records_its_phase_error_and_attempt() -> None:
    log = Log()
    failed = log.failed("output")

    run = run_of([log.requested(), log.started(), log.ingested(), failed])

    assert (run.status, run.failed_phase, run.last_phase) == ("failed", "output", "output")
    assert (run.error, run.attempt) == ("output broke", 1)
    assert run.completed_at == failed.occurred_at


def test_a_retry_of_a_failed_run_runs_the_next_attempt_from_its_failed_phase() -> None:
    log = Log()
    failed = run_of([log.requested(), log.started(), log.ingested(), log.failed("output")])

    run = apply(log.retry(2, "output"), failed)

    assert (run.status, run.attempt, run.last_phase) == ("running", 2, "output")
    assert (run.error, run.failed_phase, run.completed_at) == (None, None, None)
    assert run.retry_phase == "output"


def test_a_retry_waits_until_the_run_starts_again() -> None:
    log = Log()
    retried = run_of([log.requested(), log.started(), log.failed("ingest"), log.retry(2)])

    assert retried.retry_phase == "ingest"
    assert apply(log.started(2), retried).retry_phase is None


def test_a_retry_waits_through_outputs_until_the_run_completes() -> None:
    log = Log()
    retried = run_of([log.requested(), log.started(), log.failed("output"), log.retry(2, "output")])

    written = apply(log.outputs(), retried)

    assert written.retry_phase == "output"
    assert written.last_phase == "archive"
    assert apply(log.completed(), written).retry_phase is None


def test_a_retry_that_fails_again_waits_no_more() -> None:
    log = Log()
    retried = run_of([log.requested(), log.started(), log.failed("output"), log.retry(2, "output")])

    run = apply(log.failed("output", attempt=2), retried)

    assert (run.status, run.attempt, run.retry_phase) == ("failed", 2, None)


def test_a_repeated_retry_request_changes_nothing() -> None:
    log = Log()
    retry = log.retry(2)
    restarted = run_of([log.requested(), log.started(), log.failed(), retry, log.started(2)])

    assert apply(retry, restarted) == restarted


@pytest.mark.parametrize("end", ["completed", "running"])
def test_a_retry_of_a_run_that_has_not_failed_changes_nothing(end: str) -> None:
    log = Log()
    events = log.completed_run() if end == "completed" else [log.requested(), log.started()]
    run = run_of(events)

    assert apply(log.retry(2), run) == run


def test_every_event_applied_twice_leaves_the_run_as_once() -> None:
    log = Log()
    events = [
        log.requested(),
        log.started(),
        log.failed("ingest"),
        log.retry(2),
        log.started(2),
        log.ingested(),
        log.outputs(),
        log.completed(),
    ]

    assert run_of([event for event in events for _ in range(2)]) == run_of(events)


def test_every_event_is_idempotent_whatever_came_before() -> None:
    log = Log()
    events = [
        log.requested(),
        log.started(),
        log.ingested(),
        log.failed("output"),
        log.retry(2, "output"),
        log.outputs(),
        log.completed(),
    ]
    for count in range(len(events)):
        before = run_of(events[:count])
        for event in events:
            once = apply(event, before)
            assert apply(event, once) == once


def test_a_tape_pushed_again_after_completion_replays_its_start_without_reopening_it() -> None:
    log = Log()
    first = [log.started(kind="tape", location="T-1"), log.ingested()]
    done = run_of([*first, log.outputs(), log.completed()])

    run = run_of(first, done)

    assert run.status == "completed"
    assert (run.last_phase, run.error) == ("archive", None)
    assert (run.started_at, run.completed_at) == (done.started_at, done.completed_at)


def test_a_replayed_start_does_not_reopen_a_failed_run() -> None:
    log = Log()
    started = log.started()
    failed = run_of([log.requested(), started, log.ingested(), log.failed("output")])

    run = apply(started, failed)

    assert (run.status, run.error, run.failed_phase) == ("failed", "output broke", "output")


def test_a_tape_pushed_again_after_an_ingest_failure_starts_the_next_attempt() -> None:
    log = Log()
    failed = run_of([log.started(kind="tape", location="T-1"), log.failed("ingest")])

    run = apply(log.started(2, kind="tape", location="T-1"), failed)

    assert (run.status, run.attempt, run.error) == ("running", 2, None)


def test_a_late_failure_of_an_earlier_attempt_is_ignored() -> None:
    log = Log()
    late = log.failed("output", attempt=1)
    restarted = run_of([log.requested(), log.started(), log.failed(), log.retry(2), log.started(2)])

    run = apply(late, restarted)

    assert (run.status, run.attempt, run.error) == ("running", 2, None)


def test_a_failure_reported_after_completion_is_ignored() -> None:
    log = Log()
    done = run_of(log.completed_run())

    assert apply(log.failed("archive"), done) == done


def test_a_late_start_of_an_earlier_attempt_does_not_go_back() -> None:
    log = Log()
    early = log.started(1)
    restarted = run_of([log.requested(), early, log.failed(), log.retry(2), log.started(2)])

    run = apply(early, restarted)

    assert (run.status, run.attempt) == ("running", 2)


def test_outputs_seen_before_the_tape_keep_the_furthest_phase() -> None:
    log = Log()
    requested, started, ingested, outputs = (
        log.requested(),
        log.started(),
        log.ingested(),
        log.outputs(),
    )

    run = run_of([requested, started, outputs, ingested])

    assert run.last_phase == "archive"
    assert run.tape_ingested_at == ingested.occurred_at


def test_a_run_first_seen_mid_way_is_running_and_dated_by_that_event() -> None:
    log = Log()
    ingested = log.ingested()

    run = run_of([ingested])

    assert (run.status, run.last_phase) == ("running", "ingest")
    assert (run.created_at, run.first_seen_at) == (None, ingested.occurred_at)
    assert run.started_at == ingested.occurred_at


def test_a_run_created_late_keeps_its_creation_time_and_when_it_was_first_seen() -> None:
    log = Log()
    ingested = log.ingested()

    run = run_of([ingested, log.started()])

    assert (run.created_at, run.first_seen_at) == (CREATED_AT, ingested.occurred_at)


def test_a_retry_request_alone_does_not_date_a_run() -> None:
    assert run_of([Log().retry(2)]).first_seen_at is None


def test_events_of_other_types_change_nothing() -> None:
    run = run_of(Log().completed_run())

    assert apply(object(), run) is run


def test_later_phase_never_goes_back() -> None:
    assert later_phase("pricing", "ingest") == "pricing"
    assert later_phase(None, "ingest") == "ingest"
    assert later_phase("validate", "archive") == "archive"


def test_a_completed_run_whose_loans_are_all_decided_is_decided_with_its_decision_tape() -> None:
    log = Log()
    events = [*log.completed_run(), log.decided()]

    run = run_of(events)

    assert run.status == "decided"
    assert run.ended
    assert run.decided_at == events[-1].decided_at  # type: ignore[attr-defined]
    assert [report.key for report in run.reports] == [*REPORT_KEYS, "decision_tape"]
    assert run.archive_output is not None
    assert run.archive_output[-1] == f"archive/{RUN}/output/decision_tape.csv"
    assert len(run.archive_output) == len(REPORT_KEYS) + 1


def test_a_decision_before_completion_changes_nothing() -> None:
    log = Log()
    events = [log.requested(), log.started(), log.ingested()]

    run = run_of([*events, log.decided()])

    assert run == run_of(events)


def test_a_completion_or_decision_delivered_again_leaves_a_decided_run_as_it_was() -> None:
    log = Log()
    decided = [*log.completed_run(), log.decided()]
    run = run_of(decided)

    again = run_of([decided[3], decided[4], decided[5]], run)

    assert again.status == "decided"
    assert again.reports == run.reports
    assert again.archive_output == run.archive_output


def test_a_failure_reported_after_the_run_was_decided_is_history() -> None:
    log = Log()
    run = run_of([*log.completed_run(), log.decided()])

    assert apply(log.failed(phase="archive"), run).status == "decided"
