"""PSI and KS per feature against the training reference (contracts.drift)."""

from datetime import UTC, datetime
from math import log
from uuid import UUID

import pytest

from contracts.drift import bin_counts, drift, ks, psi, shares
from contracts.scoring import CategoricalReference, ModelLoaded, NumericReference, ScoringFeatures
from services.scoring.domain import RunDriftMonitor

AT = datetime(2026, 12, 1, tzinfo=UTC)
REFERENCE = ModelLoaded(
    event_id=UUID(int=1),
    model_name="m",
    model_version="1",
    trained_at=AT,
    training_samples=100,
    training_seed=1,
    default_rate="0.1000",
    metrics={},
    numeric_reference=(
        NumericReference(
            feature="credit_score",
            edges=("650", "700"),
            shares=("0.25", "0.25", "0.5"),
            missing_share="0",
        ),
    ),
    categorical_reference=(
        CategoricalReference(
            feature="property_type", categories=("condo", "sfr"), shares=("0.5", "0.5", "0")
        ),
    ),
    occurred_at=AT,
)


def loans(*pairs: tuple[str | None, str | None]) -> list[ScoringFeatures]:
    return [ScoringFeatures(credit_score=score, property_type=kind) for score, kind in pairs]


def test_psi_of_identical_distributions_is_zero_and_of_known_ones_matches_the_formula() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = (0.8 - 0.5) * log(0.8 / 0.5) + (0.2 - 0.5) * log(0.2 / 0.5)
    assert psi([0.5, 0.5], [0.8, 0.2]) == pytest.approx(expected)
    assert psi([0.5, 0.5], [0.8, 0.2]) == pytest.approx(0.4159, abs=1e-4)


def test_psi_floors_an_empty_bin_instead_of_going_infinite() -> None:
    assert psi([0.5, 0.5, 0.0], [0.5, 0.4, 0.1]) < 2


def test_ks_is_the_largest_gap_between_the_cumulative_shares() -> None:
    assert ks([0.25, 0.25, 0.5], [0.25, 0.25, 0.5]) == 0.0
    assert ks([0.25, 0.25, 0.5], [0.0, 0.0, 1.0]) == pytest.approx(0.5)
    assert ks([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.1)


def test_a_value_on_an_edge_falls_in_the_bin_below_and_missing_in_its_own() -> None:
    counts = bin_counts(
        REFERENCE, loans(("650", "condo"), ("650.01", "sfr"), ("701", "co-op"), (None, None))
    )
    assert counts["credit_score"] == [1, 1, 1, 1]
    assert counts["property_type"] == [1, 1, 2]


def test_run_drift_reports_psi_ks_and_whether_it_drifted() -> None:
    like_training = loans(("600", "condo"), ("680", "sfr"), ("720", "condo"), ("750", "sfr"))
    found = {item.feature: item for item in drift(REFERENCE, bin_counts(REFERENCE, like_training))}
    assert found["credit_score"].psi == "0.000000"
    assert found["credit_score"].ks == "0.000000"
    assert not found["credit_score"].drifted
    assert found["credit_score"].loans == 4
    all_low = loans(("600", "condo"), ("610", "condo"), ("620", "condo"), ("630", "condo"))
    shifted = {item.feature: item for item in drift(REFERENCE, bin_counts(REFERENCE, all_low))}
    assert shifted["credit_score"].drifted
    assert shifted["credit_score"].ks == "0.750000"
    assert shifted["property_type"].drifted


def test_shares_of_no_loans_are_zero() -> None:
    assert shares([0, 0]) == [0.0, 0.0]


def test_the_monitor_folds_a_runs_batches_and_counts_a_redelivered_batch_once() -> None:
    monitor = RunDriftMonitor(REFERENCE, max_runs=1)
    run, other = UUID(int=10), UUID(int=11)
    monitor.observe(run, 0, loans(("600", "condo")))
    monitor.observe(run, 0, loans(("600", "condo")))
    result = monitor.observe(run, 1, loans(("720", "sfr")))
    assert {item.loans for item in result} == {2}
    monitor.observe(other, 0, loans(("720", "sfr")))
    again = monitor.observe(run, 2, loans(("720", "sfr")))
    assert {item.loans for item in again} == {1}  # the oldest run was forgotten
