"""The model registry through `loan-engine model train | list | promote` on a local MLflow store."""

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.scoring.registry import ensure_production_model, load_production, production_version
from services.scoring.settings import ScoringSettings


def last_json(output: str) -> dict[str, object]:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scoring-state")


def test_train_list_and_promote_move_a_version_from_staging_to_production(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCORING_STATE_DIR", str(state_dir))
    runner = CliRunner()

    first = runner.invoke(app, ["model", "train", "--samples", "400", "--seed", "3", "--json"])
    second = runner.invoke(app, ["model", "train", "--samples", "400", "--seed", "4", "--json"])
    assert first.exit_code == 0, first.output
    trained = last_json(first.output)
    assert (trained["version"], trained["stage"], trained["samples"]) == ("1", "staging", 400)
    assert set(trained["metrics"]) == {"xgboost", "logistic_regression"}  # type: ignore[arg-type]
    assert last_json(second.output)["version"] == "2"

    promoted = runner.invoke(app, ["model", "promote", "1", "--json"])
    assert promoted.exit_code == 0, promoted.output
    assert last_json(promoted.output)["stage"] == "production"
    runner.invoke(app, ["model", "promote", "2"])

    listed = last_json(runner.invoke(app, ["model", "list", "--json"]).output)
    stages = {v["version"]: v["stage"] for v in listed["versions"]}  # type: ignore[union-attr]
    assert stages == {"2": "production", "1": "archived"}

    unknown = runner.invoke(app, ["model", "promote", "99"])
    assert unknown.exit_code == 2
    assert "no version '99'" in unknown.output

    settings = ScoringSettings(state_dir=state_dir)
    assert production_version(settings) == "2"
    assert ensure_production_model(settings) == "2"  # there is one: nothing is trained
    served = load_production(settings)
    assert (served.card.model_version, served.card.training_seed) == ("2", 4)


def test_a_registry_without_production_gets_one_trained(state_dir: Path) -> None:
    settings = ScoringSettings(
        state_dir=state_dir, model_name="fresh", bootstrap_samples=300, bootstrap_seed=5
    )
    assert production_version(settings) is None

    assert ensure_production_model(settings) == "1"
    assert load_production(settings).card.training_samples == 300


def test_mlflow_leaves_sql_and_migration_logs_to_the_service_s_json_handler() -> None:
    for name in ("sqlalchemy.engine", "alembic", "mlflow"):
        library_logger = logging.getLogger(name)
        assert library_logger.propagate, name
        assert library_logger.handlers == [], name
