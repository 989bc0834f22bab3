"""Stage tracking and loan places, pure (SPEC §7)."""

from datetime import UTC, datetime, timedelta

from services.gateway.lineage.domain import (
    BatchPlace,
    RunCounts,
    in_history_order,
    place_of,
    stage_reports,
)


def counts(**overrides: object) -> RunCounts:
    values: dict[str, object] = {
        "status": "running",
        "failed_phase": None,
        "total_loans": 12,
        "reported": None,
        "projected": 5,
        "batches": {
            "ingested": {0: 5, 1: 5, 2: 2},
            "evaluated": {0: 5, 1: 5, 2: 2},
            "priced": {0: 5, 2: 2},
            "dispositioned": {0: 5},
        },
    }
    values.update(overrides)
    return RunCounts(**values)  # type: ignore[arg-type]


def test_each_stage_takes_in_what_the_one_before_let_out() -> None:
    stages = {report.stage: report for report in stage_reports(counts())}
    assert (stages["read"].records_in, stages["read"].records_out) == (12, 12)
    assert (stages["priced"].records_in, stages["priced"].records_out) == (12, 7)
    assert (stages["dispositioned"].records_in, stages["dispositioned"].records_out) == (7, 5)
    assert (stages["reported"].records_in, stages["reported"].records_out) == (5, None)


def test_batches_seen_upstream_but_not_here_are_where_records_stand_still() -> None:
    stages = {report.stage: report for report in stage_reports(counts())}
    assert (stages["priced"].stuck, stages["priced"].stuck_batches) == (5, (1,))
    assert (stages["dispositioned"].stuck, stages["dispositioned"].stuck_batches) == (2, (2,))
    assert stages["evaluated"].stuck_batches == ()


def test_a_failed_run_counts_what_its_failed_phase_held_as_failed_not_stuck() -> None:
    stages = {
        report.stage: report
        for report in stage_reports(counts(status="failed", failed_phase="pricing"))
    }
    assert (stages["priced"].failed, stages["priced"].stuck) == (5, 0)
    assert (stages["dispositioned"].failed, stages["dispositioned"].stuck) == (0, 2)


def test_stages_this_deployment_does_not_run_are_marked_unavailable() -> None:
    stages = {report.stage: report for report in stage_reports(counts())}
    assert not stages["scored"].available and stages["scored"].records_out is None
    assert stages["projected"].available


def test_scored_and_decided_count_the_scores_and_final_decisions_after_the_projection() -> None:
    complete = {stage: {0: 5, 1: 5, 2: 2} for stage in ("ingested", "evaluated", "priced")}
    run = counts(
        status="completed",
        reported=12,
        projected=12,
        batches={**complete, "dispositioned": {0: 5, 1: 5, 2: 2}},
        scored=10,
        decided=7,
    )
    stages = {report.stage: report for report in stage_reports(run)}
    assert stages["scored"].available and stages["decided"].available
    assert (stages["scored"].records_in, stages["scored"].records_out) == (12, 10)
    assert (stages["scored"].stuck, stages["scored"].failed) == (2, 0)
    assert (stages["decided"].records_in, stages["decided"].records_out) == (10, 7)
    assert stages["decided"].stuck == 3


def test_a_loans_batch_and_index_follow_from_the_batches_loan_counts() -> None:
    per_batch = {0: 500, 1: 500, 2: 17}
    assert place_of(1, per_batch) == BatchPlace(0, 0)
    assert place_of(500, per_batch) == BatchPlace(0, 499)
    assert place_of(501, per_batch) == BatchPlace(1, 0)
    assert place_of(1017, per_batch) == BatchPlace(2, 16)
    assert place_of(1018, per_batch) is None


def test_a_loans_place_is_unknown_while_an_earlier_batch_is_unseen() -> None:
    assert place_of(700, {0: 500, 2: 500}) is None


def test_a_history_keeps_the_chain_in_stage_order_and_merges_actions_in_by_time() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)

    def at(minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    # The scorer's clock runs behind: its stage still follows dispositioned.
    chain = [("ingested", at(0)), ("dispositioned", at(2)), ("scored", at(1))]
    actions = [("reopened", at(9)), ("corrected", at(1)), ("acknowledged", at(5))]
    order = in_history_order(chain, actions, lambda event: event[1])
    assert [name for name, _ in order] == [
        "ingested", "corrected", "dispositioned", "scored", "acknowledged", "reopened"
    ]  # fmt: skip
