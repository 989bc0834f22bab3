"""`GET /ml/model` and `GET /ml/drift` (SPEC §8): the production model and a run's feature drift.

Both answer from read models the projector folds from the log (models.v1 cards, the model inputs
every loans.scored.v1 loan carries), never from MLflow's files: drift is computed with the same
pure functions the scoring service's gauges use (`contracts.drift`).
"""

from types import SimpleNamespace
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from contracts.drift import bin_counts, drift
from contracts.scoring import CATEGORICAL_FEATURES, FEATURES, ModelLoaded
from services.gateway.deps import CurrentUser, SessionDep
from services.gateway.error_docs import documented
from services.gateway.errors import NotFound
from services.gateway.ml import repository as repo
from services.gateway.ml.schemas import (
    DriftResponse,
    FeatureDriftResponse,
    Metrics,
    ModelFeature,
    ModelResponse,
)
from services.gateway.runs.service import visible_run

router = APIRouter(prefix="/ml", tags=["machine learning"], responses=documented(404))
SERVED_ESTIMATOR = "xgboost"


@router.get("/model", response_model=ModelResponse)
async def production_model(_user: CurrentUser, session: SessionDep) -> ModelResponse:
    """The production model: version, cross-validated metrics, when trained, its features."""
    row = await repo.latest_card(session)
    if row is None:
        raise NotFound("No model has been served yet")
    return model_response(ModelLoaded.model_validate(row.card), row.loaded_at)


def model_response(card: ModelLoaded, loaded_at: Any) -> ModelResponse:
    """A model card as `/ml/model` shows it."""
    metrics = {name: Metrics(**m.model_dump()) for name, m in card.metrics.items()}
    served = SERVED_ESTIMATOR if SERVED_ESTIMATOR in metrics else next(iter(metrics))
    return ModelResponse(
        model_name=card.model_name,
        model_version=card.model_version,
        estimator=served,
        metrics=metrics[served],
        baselines={name: m for name, m in metrics.items() if name != served},
        trained_at=card.trained_at,
        loaded_at=loaded_at,
        training_samples=card.training_samples,
        training_seed=card.training_seed,
        default_rate=card.default_rate,
        features=[
            ModelFeature(
                name=name, kind="categorical" if name in CATEGORICAL_FEATURES else "numeric"
            )
            for name in FEATURES
        ],
    )


@router.get("/drift", response_model=DriftResponse)
async def run_drift(
    run_id: Annotated[UUID, Query(description="The run.")],
    user: CurrentUser,
    session: SessionDep,
) -> DriftResponse:
    """PSI and KS per feature of a run's scored loans against the training data (404 while
    none of its loans is scored)."""
    await visible_run(session, user, run_id)
    version = await repo.run_model_version(session, run_id)
    if version is None:
        raise NotFound("None of the run's loans has been scored yet")
    row = await repo.card(session, version)
    if row is None:
        raise NotFound(f"The card of model version {version} has not been projected yet")
    card = ModelLoaded.model_validate(row.card)
    loans = [
        SimpleNamespace(**features)
        for features in await repo.run_features(session, run_id, version)
    ]
    found = drift(card, bin_counts(card, loans))  # type: ignore[arg-type]
    return DriftResponse(
        run_id=str(run_id),
        model_name=card.model_name,
        model_version=card.model_version,
        loans=len(loans),
        drifted=any(item.drifted for item in found),
        features=[FeatureDriftResponse(**item.model_dump()) for item in found],
    )
