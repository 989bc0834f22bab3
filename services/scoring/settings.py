"""Settings of the scoring service (env prefix `SCORING_`; shared infrastructure unprefixed)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    """What scoring needs beyond the shared settings: its model registry and routing policy."""

    model_config = SettingsConfigDict(
        env_prefix="SCORING_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        protected_namespaces=(),
    )

    service_name: str = "scoring"
    http_port: int = 8106
    consumer_group: str = Field("scoring", description="Consumer group on loans.dispositioned.v1.")
    state_dir: Path = Field(
        Path(".stack/state/scoring"),
        description="Local state: the default MLflow store (mlflow.db and the model artifacts).",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow tracking and registry URI (default: sqlite under SCORING_STATE_DIR).",
    )
    model_name: str = Field("loan-engine-scoring", description="Registered model name.")
    policy_version: str | None = Field(
        None, description="Routing policy version (default: the current one)."
    )
    train_if_missing: bool = Field(
        True,
        description="At start, train and promote a model when the registry has no production one.",
    )
    bootstrap_samples: int = Field(
        20_000, description="History size of a model trained because none was in production."
    )
    bootstrap_seed: int = Field(2026, description="Seed of that history.")
    drift_runs_kept: int = Field(32, description="Runs whose drift the metrics keep folding.")

    @property
    def tracking_uri(self) -> str:
        """The MLflow URI in use: the setting, else a sqlite store in the state folder."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_dir(self) -> Path:
        """The local MLflow folder (absolute)."""
        return (self.state_dir / "mlflow").resolve()
