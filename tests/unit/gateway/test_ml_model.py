"""`GET /ml/model`'s answer from a model card (pure): the served estimator, baselines, features."""

from datetime import UTC, datetime

from contracts.ids import event_id
from contracts.scoring import FEATURES, ModelLoaded, ModelMetrics
from services.gateway.ml.routes import model_response

AT = datetime(2026, 12, 1, tzinfo=UTC)


def card(**metrics: ModelMetrics) -> ModelLoaded:
    return ModelLoaded(
        event_id=event_id("model.loaded", event_id("model", "3"), "3"),
        model_name="loan-engine-scoring",
        model_version="3",
        trained_at=AT,
        training_samples=20000,
        training_seed=2026,
        default_rate="0.0800",
        metrics=metrics,
        numeric_reference=(),
        categorical_reference=(),
        occurred_at=AT,
    )


def metrics(auc: str) -> ModelMetrics:
    return ModelMetrics(
        auc=auc, gini="0.6926", ks="0.5467", precision="0.3", recall="0.6", f1="0.4"
    )


def test_the_served_estimator_is_xgboost_and_the_logistic_regression_a_baseline() -> None:
    answer = model_response(
        card(logistic_regression=metrics("0.8374"), xgboost=metrics("0.8463")), AT
    )

    assert (answer.model_version, answer.stage, answer.estimator) == ("3", "production", "xgboost")
    assert answer.metrics.auc == "0.8463"
    assert list(answer.baselines) == ["logistic_regression"]
    assert answer.baselines["logistic_regression"].auc == "0.8374"
    assert [feature.name for feature in answer.features] == list(FEATURES)
    kinds = {feature.name: feature.kind for feature in answer.features}
    assert (kinds["credit_score"], kinds["property_type"]) == ("numeric", "categorical")


def test_a_card_with_one_estimator_serves_that_one_with_no_baselines() -> None:
    answer = model_response(card(gbm=metrics("0.8000")), AT)

    assert (answer.estimator, answer.metrics.auc, answer.baselines) == ("gbm", "0.8000", {})
