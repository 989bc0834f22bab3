"""Folding run events into the run read model (pure)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

from contracts.ids import event_id
from contracts.runs import RunRetryRequested
from services.gateway.runs.domain import (
    RUN_FIELDS,
    RunState,
    apply,
    later_phase,
    run_order,
    state_from_mapping,
    state_to_row,
    weekday,
)
from tests.unit.gateway.gateway_events import CREATED_AT, RunScenario


def fold(events: list[object], state: RunState | None = None) -> RunState:
    current = state
    for event in events:
        current = apply(event, current or RunState(run_id=event.run_id))  # type: ignore[attr-defined]
    assert current is not None
    return current


def test_a_requested_run_is_pending_with_its_parameters_and_weekday() -> None:
    scenario = RunScenario(sales_team_id="team-a")
    state = fold(scenario.run_events()[:1])
    assert state.status == "pending"
    assert state.sales_team_id == "team-a"
    assert state.irr_target == Decimal("8.05")
    assert (state.run_weekday, state.run_weekday_name) == (0, "Monday")
    assert state.source_kind == "folder"


def test_a_started_run_is_running_at_the_ingest_phase() -> None:
    state = fold(RunScenario().run_events()[:2])
    assert state.status == "running"
    assert state.last_phase == "ingest"
    assert state.started_at == CREATED_AT + timedelta(seconds=1)


def test_a_completed_run_carries_its_final_facts() -> None:
    scenario = RunScenario(loans=12)
    state = fold(scenario.run_events())
    assert state.status == "completed"
    assert state.last_phase == "archive"
    assert state.total_loans == 12
    assert (state.to_purchase, state.projected, state.rejected) == tuple(
        scenario.disposition_counts().values()
    )
    assert state.archive_input == (f"archive/{scenario.run_id}/input/tape.csv",)


def test_a_failed_run_records_its_phase_and_error() -> None:
    state = fold(RunScenario(fail_phase="pricing").run_events())
    assert state.status == "failed"
    assert state.failed_phase == state.last_phase == "pricing"
    assert state.error is not None and "pricing" in state.error


def test_every_event_applied_twice_leaves_the_run_as_once() -> None:
    events = RunScenario().run_events()
    once = fold(events)
    twice = fold([event for event in events for _ in range(2)])
    assert twice == once


def test_a_retry_of_a_failed_run_starts_the_next_attempt() -> None:
    failed = fold(RunScenario(fail_phase="pricing").run_events())
    retry = RunRetryRequested(
        event_id=event_id("run.retry_requested", failed.run_id, 2),
        run_id=failed.run_id,
        occurred_at=CREATED_AT,
        producer="gateway",
        attempt=2,
        phase="pricing",
    )
    state = apply(retry, failed)
    assert (state.status, state.attempt, state.error) == ("running", 2, None)
    assert apply(retry, state) == state


def test_a_retry_of_a_completed_run_changes_nothing() -> None:
    done = fold(RunScenario().run_events())
    retry = RunRetryRequested(
        event_id=uuid4(),
        run_id=done.run_id,
        occurred_at=CREATED_AT,
        producer="gateway",
        attempt=2,
        phase="pricing",
    )
    assert apply(retry, done) == done


def test_a_late_failure_of_an_earlier_attempt_is_ignored() -> None:
    events = RunScenario(fail_phase="pricing").run_events()
    state = replace(fold(events[:-1]), attempt=3)
    assert apply(events[-1], state).status == "running"


def test_a_tape_run_first_seen_when_started_has_no_request() -> None:
    state = fold(RunScenario(requested=False).run_events()[:1])
    assert state.status == "running"
    assert state.created_at == CREATED_AT


def test_weekday_is_taken_in_utc() -> None:
    sunday_evening_elsewhere = datetime(2026, 11, 22, 23, 30, tzinfo=UTC) + timedelta(hours=1)
    assert weekday(sunday_evening_elsewhere) == (0, "Monday")


def test_newer_runs_sort_first_by_run_order() -> None:
    older, newer = CREATED_AT, CREATED_AT + timedelta(microseconds=1)
    assert run_order(newer) < run_order(older)


def test_later_phase_never_goes_back() -> None:
    assert later_phase("pricing", "ingest") == "pricing"
    assert later_phase(None, "ingest") == "ingest"
    assert later_phase("validate", "archive") == "archive"


def test_a_state_survives_its_stored_row() -> None:
    state = fold(RunScenario().run_events())
    row = dict(zip(RUN_FIELDS, state_to_row(state), strict=True))
    assert isinstance(row["total_balance"], str)
    assert isinstance(row["archive_output"], list)
    assert state_from_mapping(row) == state
