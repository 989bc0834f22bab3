"""`/ml` responses (SPEC §8): the production model's card and a run's feature drift."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from contracts.drift import PSI_DRIFT_THRESHOLD


class Metrics(BaseModel):
    """Cross-validated metrics of one estimator (5-fold means), 4 decimals."""

    auc: str = Field(examples=["0.8463"])
    gini: str = Field(examples=["0.6926"])
    ks: str = Field(examples=["0.5467"])
    precision: str
    recall: str
    f1: str


class ModelFeature(BaseModel):
    """One model input."""

    name: str = Field(examples=["credit_score"])
    kind: Literal["numeric", "categorical"]


class ModelResponse(BaseModel):
    """The production model: the one the scoring service serves."""

    model_name: str = Field(examples=["loan-engine-scoring"])
    model_version: str = Field(examples=["3"])
    stage: Literal["production"] = "production"
    estimator: str = Field(examples=["xgboost"])
    metrics: Metrics = Field(description="The served estimator's cross-validated metrics.")
    baselines: dict[str, Metrics] = Field(
        description="Other estimators fitted on the same history (the logistic baseline)."
    )
    trained_at: datetime
    loaded_at: datetime = Field(description="When the scoring service began serving it.")
    training_samples: int
    training_seed: int
    default_rate: str = Field(description="Share of defaults in the training history.")
    features: list[ModelFeature]


class FeatureDriftResponse(BaseModel):
    """One feature's drift over the run's scored loans against the training data."""

    feature: str
    psi: str = Field(description="Population stability index, 6 decimals.")
    ks: str = Field(description="Largest gap between the binned CDFs, 6 decimals.")
    loans: int
    drifted: bool = Field(description=f"psi > {PSI_DRIFT_THRESHOLD}.")


class DriftResponse(BaseModel):
    """PSI and KS per feature of a run's scored loans against the model's training data."""

    run_id: str
    model_name: str
    model_version: str
    loans: int = Field(description="Scored loans of the run the drift is measured over.")
    psi_threshold: float = PSI_DRIFT_THRESHOLD
    drifted: bool = Field(description="Whether any feature's PSI is above the threshold.")
    features: list[FeatureDriftResponse]
