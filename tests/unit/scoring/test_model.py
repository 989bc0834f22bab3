"""The model: synthetic history, preprocessing pipeline, cross-validation and TreeSHAP scoring."""

import math
from collections.abc import Sequence

import numpy as np
import pytest
import xgboost as xgb

from contracts.scoring import FEATURES, ScoringFeatures
from services.scoring.history import synthetic_history
from services.scoring.model import Scorer, TrainedModel, feature_matrix, ks_statistic
from tests.unit.scoring.conftest import TRAINED_AT


def test_the_same_seed_gives_the_same_history_and_another_seed_another() -> None:
    first, again, other = (synthetic_history(200, seed) for seed in (5, 5, 6))
    assert first.features == again.features
    assert np.array_equal(first.defaulted, again.defaulted)
    assert first.features != other.features


def test_the_history_defaults_more_where_the_latent_risk_is_higher() -> None:
    history = synthetic_history(4_000, 3)
    high = history.latent > np.median(history.latent)
    assert history.defaulted[high].mean() > 2 * history.defaulted[~high].mean()
    assert 0.05 < history.defaulted.mean() < 0.3
    assert any(loan.dti_ratio is None for loan in history.features)


def test_a_history_needs_some_loans() -> None:
    with pytest.raises(ValueError):
        synthetic_history(3, 1)


def test_missing_numbers_are_nan_and_missing_categories_none_in_the_matrix() -> None:
    matrix = feature_matrix([ScoringFeatures(credit_score="720", property_type="condo")])
    assert matrix.shape == (1, len(FEATURES))
    assert matrix[0, 0] == 720.0
    assert math.isnan(matrix[0, 1])
    assert matrix[0, FEATURES.index("property_type")] == "condo"
    assert matrix[0, FEATURES.index("loan_purpose")] is None


def test_ks_statistic_of_a_perfect_ranking_is_one_and_of_a_useless_one_zero() -> None:
    labels = np.array([0, 0, 1, 1])
    assert ks_statistic(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert ks_statistic(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.0


def test_training_cross_validates_xgboost_and_the_baseline_with_every_metric(
    trained_model: TrainedModel,
) -> None:
    assert set(trained_model.metrics) == {"xgboost", "logistic_regression"}
    for metrics in trained_model.metrics.values():
        auc = float(metrics.auc)
        assert 0.6 < auc <= 1.0
        assert float(metrics.gini) == pytest.approx(2 * auc - 1, abs=2e-4)
        assert 0.0 < float(metrics.ks) <= 1.0
        assert all(
            0.0 <= float(value) <= 1.0 for value in (metrics.precision, metrics.recall, metrics.f1)
        )
    assert trained_model.samples == 1_500
    assert {ref.feature for ref in trained_model.numeric_reference} | {
        ref.feature for ref in trained_model.categorical_reference
    } == set(FEATURES)


def test_reference_shares_sum_to_one_per_feature(trained_model: TrainedModel) -> None:
    for numeric in trained_model.numeric_reference:
        total = sum(float(s) for s in numeric.shares) + float(numeric.missing_share)
        assert total == pytest.approx(1.0, abs=1e-5)
        assert len(numeric.shares) == len(numeric.edges) + 1
    for categorical in trained_model.categorical_reference:
        assert sum(float(s) for s in categorical.shares) == pytest.approx(1.0, abs=1e-5)


def test_shap_contributions_add_up_to_the_models_log_odds(trained_model: TrainedModel) -> None:
    scorer = trained_model.served("m", "1").scorer
    loans = synthetic_history(50, 99).features
    predictions = scorer.predict(loans)
    margins = trained_model.pipeline.predict_proba(feature_matrix(loans))[:, 1]
    bias = float(scorer.booster.predict(scorer_input(scorer, loans[:1]), pred_contribs=True)[0, -1])
    for prediction, probability in zip(predictions, margins, strict=True):
        assert prediction.probability_default == pytest.approx(float(probability), abs=1e-5)
        log_odds = math.log(prediction.probability_default / (1 - prediction.probability_default))
        assert sum(prediction.contributions) + bias == pytest.approx(log_odds, abs=1e-4)
        assert len(prediction.contributions) == len(FEATURES)


def scorer_input(scorer: Scorer, loans: Sequence[ScoringFeatures]) -> xgb.DMatrix:
    """The booster's input for `loans`, as the scorer builds it."""
    return xgb.DMatrix(np.asarray(scorer.preprocess.transform(feature_matrix(loans)), dtype=float))


def test_scoring_is_deterministic_and_scores_nothing_for_no_loans(
    trained_model: TrainedModel,
) -> None:
    scorer = trained_model.served("m", "1").scorer
    loans = synthetic_history(30, 4).features
    assert scorer.predict(loans) == scorer.predict(loans)
    assert scorer.predict([]) == []


def test_unknown_categories_and_missing_values_still_score(trained_model: TrainedModel) -> None:
    scorer = trained_model.served("m", "1").scorer
    (prediction,) = scorer.predict([ScoringFeatures(property_type="co-op")])
    assert 0.0 < prediction.probability_default < 1.0


def test_the_card_survives_its_json_and_names_its_version(trained_model: TrainedModel) -> None:
    again = TrainedModel.from_card(trained_model.pipeline, trained_model.card_json())
    assert again.card("m", "3") == trained_model.card("m", "3")
    card = trained_model.card("m", "3")
    assert (card.model_version, card.occurred_at, card.trained_at) == ("3", TRAINED_AT, TRAINED_AT)
    assert card.event_id != trained_model.card("m", "4").event_id


def test_a_categorical_inputs_one_hot_contributions_are_credited_to_that_input(
    trained_model: TrainedModel,
) -> None:
    scorer = trained_model.served("m", "1").scorer
    base = synthetic_history(10, 8).features[0]
    primary = base.model_copy(update={"occupancy_status": "primary"})
    investment = base.model_copy(update={"occupancy_status": "investment"})
    low, high = scorer.predict([primary, investment])
    change = np.abs(np.array(high.contributions) - np.array(low.contributions))
    assert FEATURES[int(np.argmax(change))] == "occupancy_status"
    assert high.probability_default > low.probability_default
