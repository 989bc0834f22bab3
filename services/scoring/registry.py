"""The model registry (MLflow): train and register, list, promote staging -> production, load.

Every trained version is registered with the alias `staging`; `promote` moves the alias
`production` to it (MLflow's aliases replace its deprecated stages; a `stage` tag on each version
says `staging`, `production` or `archived` for people browsing the MLflow UI). The pipeline is
stored as a joblib artifact beside `card.json`, the model card the service publishes. Models are
never committed: `ensure_production_model` trains one when the registry has none.
"""

import contextlib
import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import joblib
import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from contracts.scoring import ModelMetrics
from services.common.logs import adopt_library_loggers
from services.scoring.errors import NoProductionModel, UnknownModelVersion
from services.scoring.history import synthetic_history
from services.scoring.model import FOLDS, XGBOOST_PARAMS, ServedModel, TrainedModel, train
from services.scoring.settings import ScoringSettings

# Importing MLflow gave `mlflow`, `sqlalchemy.engine`, `alembic` and `huey` handlers of its own.
adopt_library_loggers("mlflow", "sqlalchemy.engine", "alembic", "huey")

logger = logging.getLogger(__name__)

EXPERIMENT = "loan-engine-scoring"
STAGING, PRODUCTION = "staging", "production"
PIPELINE_FILE, CARD_FILE = "pipeline.joblib", "card.json"
ARTIFACT_PATH = "model"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One registered version as `model list` shows it."""

    version: str
    stage: str
    run_id: str
    metrics: dict[str, ModelMetrics]
    trained_at: str
    samples: int


def client(settings: ScoringSettings) -> MlflowClient:
    """An MLflow client on the configured store (the local folder is created when used)."""
    if not settings.mlflow_tracking_uri:
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(settings.tracking_uri, settings.tracking_uri)


def train_and_register(settings: ScoringSettings, samples: int, seed: int) -> VersionInfo:
    """Train on a synthetic history, log params, metrics and artifacts, register as staging."""
    registry = client(settings)
    experiment_id = _experiment(settings, registry)
    started = time.monotonic()
    trained = train(synthetic_history(samples, seed), seed, datetime.now(UTC))
    seconds = time.monotonic() - started
    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({"samples": samples, "seed": seed, "folds": FOLDS, **XGBOOST_PARAMS})
        for estimator, metrics in trained.metrics.items():
            mlflow.log_metrics({f"{estimator}_{k}": float(v) for k, v in metrics})
        mlflow.log_metric("training_seconds", seconds)
        folder = Path(tmp)
        joblib.dump(trained.pipeline, folder / PIPELINE_FILE)
        (folder / CARD_FILE).write_text(trained.card_json(), encoding="utf-8")
        mlflow.log_artifacts(str(folder), artifact_path=ARTIFACT_PATH)
        source = mlflow.get_artifact_uri(ARTIFACT_PATH)
    with contextlib.suppress(MlflowException):  # registered by an earlier version
        registry.create_registered_model(settings.model_name)
    version = registry.create_model_version(
        settings.model_name, source=source, run_id=run.info.run_id, tags={"stage": STAGING}
    )
    registry.set_registered_model_alias(settings.model_name, STAGING, version.version)
    logger.info(
        "model trained",
        extra={"version": version.version, "samples": samples, "seconds": round(seconds, 1)},
    )
    return _info(registry, settings, str(version.version))


def list_versions(settings: ScoringSettings) -> list[VersionInfo]:
    """Every registered version, newest first."""
    registry = client(settings)
    try:
        found = registry.search_model_versions(f"name='{settings.model_name}'")
    except MlflowException:
        return []
    numbers = sorted((int(v.version) for v in found), reverse=True)
    return [_info(registry, settings, str(number)) for number in numbers]


def promote(settings: ScoringSettings, version: str) -> VersionInfo:
    """Make `version` the production model; the one it replaces is archived."""
    registry = client(settings)
    _version(registry, settings, version)
    aliases = _aliases(registry, settings)
    previous = aliases.get(PRODUCTION)
    if previous is not None and previous != version:
        registry.set_model_version_tag(settings.model_name, previous, "stage", "archived")
    registry.set_registered_model_alias(settings.model_name, PRODUCTION, version)
    registry.set_model_version_tag(settings.model_name, version, "stage", PRODUCTION)
    if aliases.get(STAGING) == version:
        registry.delete_registered_model_alias(settings.model_name, STAGING)
    return _info(registry, settings, version)


def production_version(settings: ScoringSettings) -> str | None:
    """The production version, or None when there is none."""
    return _aliases(client(settings), settings).get(PRODUCTION)


def load(settings: ScoringSettings, version: str) -> ServedModel:
    """A registered version's scorer and model card."""
    registry = client(settings)
    model_version = _version(registry, settings, version)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=model_version.source, dst_path=tmp)
        )
        # The registry is the service's own store (or an operator's server): trusted input.
        pipeline = joblib.load(folder / PIPELINE_FILE)
        trained = TrainedModel.from_card(pipeline, (folder / CARD_FILE).read_text("utf-8"))
    return trained.served(settings.model_name, version)


def load_production(settings: ScoringSettings) -> ServedModel:
    """The production model; NoProductionModel when the registry has none."""
    version = production_version(settings)
    if version is None:
        raise NoProductionModel(
            f"no production version of {settings.model_name!r} in {settings.tracking_uri}: "
            "run `loan-engine model train` and `loan-engine model promote VERSION`"
        )
    return load(settings, version)


def ensure_production_model(settings: ScoringSettings) -> str:
    """The production version, training and promoting one first when there is none.

    `stack up` calls this before it starts the services, so a fresh machine scores with no extra
    step (trained on `SCORING_BOOTSTRAP_SAMPLES` loans; see the README for how long it takes).
    """
    version = production_version(settings)
    if version is not None:
        return version
    logger.info("no production model: training one", extra={"model": settings.model_name})
    trained = train_and_register(settings, settings.bootstrap_samples, settings.bootstrap_seed)
    return promote(settings, trained.version).version


def _experiment(settings: ScoringSettings, registry: MlflowClient) -> str:
    found = registry.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return str(found.experiment_id)
    location = (
        None if settings.mlflow_tracking_uri else (settings.mlflow_dir / "artifacts").as_uri()
    )
    return str(registry.create_experiment(EXPERIMENT, artifact_location=location))


def _aliases(registry: MlflowClient, settings: ScoringSettings) -> dict[str, str]:
    try:
        model = registry.get_registered_model(settings.model_name)
    except MlflowException:
        return {}
    return {alias: str(version) for alias, version in model.aliases.items()}


def _version(registry: MlflowClient, settings: ScoringSettings, version: str) -> ModelVersion:
    try:
        return registry.get_model_version(settings.model_name, version)
    except MlflowException as error:
        raise UnknownModelVersion(f"{settings.model_name!r} has no version {version!r}") from error


def _info(registry: MlflowClient, settings: ScoringSettings, version: str) -> VersionInfo:
    model_version = _version(registry, settings, version)
    run = registry.get_run(model_version.run_id)
    metrics: dict[str, dict[str, str]] = {}
    for key, value in run.data.metrics.items():
        estimator, _, metric = key.rpartition("_")
        if metric in ModelMetrics.model_fields and estimator:
            metrics.setdefault(estimator, {})[metric] = f"{value:.4f}"
    return VersionInfo(
        version=version,
        stage=model_version.tags.get("stage", "none"),
        run_id=model_version.run_id,
        metrics={k: ModelMetrics(**v) for k, v in metrics.items() if len(v) == 6},
        trained_at=datetime.fromtimestamp(run.info.start_time / 1000, UTC).isoformat(),
        samples=int(run.data.params.get("samples", 0)),
    )
