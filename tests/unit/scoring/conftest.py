"""One small model trained per test session: enough to score, fast enough for unit tests."""

from datetime import UTC, datetime

import pytest

from services.scoring.history import synthetic_history
from services.scoring.model import ServedModel, TrainedModel, train

TRAINED_AT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def trained_model() -> TrainedModel:
    return train(synthetic_history(1_500, seed=11), seed=11, trained_at=TRAINED_AT, folds=3)


@pytest.fixture(scope="session")
def served_model(trained_model: TrainedModel) -> ServedModel:
    return trained_model.served("loan-engine-scoring", "7")
