"""The credit model: scikit-learn preprocessing, XGBoost and a logistic-regression baseline.

Training fits `preprocessing -> estimator` pipelines, cross-validates both estimators (5 folds)
and refits XGBoost on the whole history. Scoring is vectorised per batch: one preprocessing
transform, one XGBoost call with `pred_contribs=True`, which computes exact TreeSHAP values
(the values shap's TreeExplainer gives, computed inside XGBoost's C++, so `shap` is not a
dependency). The contributions of a categorical feature's one-hot columns are summed, so each
loan gets one contribution per model input.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from uuid import uuid5

import numpy as np
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from contracts.ids import NS
from contracts.scoring import (
    CATEGORICAL_FEATURES,
    FEATURES,
    NUMERIC_FEATURES,
    CategoricalReference,
    ModelLoaded,
    ModelMetrics,
    NumericReference,
    ScoringFeatures,
)
from services.scoring.domain import Prediction
from services.scoring.history import History

FOLDS = 5
# Precision, recall and F1 count a loan as flagged when its P(default) is at least this.
DECISION_THRESHOLD = 0.2
DECILES = tuple(range(10, 100, 10))
XGBOOST_PARAMS = {
    "n_estimators": 80,
    "max_depth": 3,
    "learning_rate": 0.15,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "min_child_weight": 5,
    "tree_method": "hist",
    "eval_metric": "auc",
}


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """A fitted pipeline, its cross-validated metrics and its training reference."""

    pipeline: Pipeline
    metrics: dict[str, ModelMetrics]
    numeric_reference: tuple[NumericReference, ...]
    categorical_reference: tuple[CategoricalReference, ...]
    samples: int
    seed: int
    default_rate: str
    trained_at: datetime

    def card_json(self) -> str:
        """Everything but the pipeline, as the JSON stored beside it in the registry."""
        card = {
            "trained_at": self.trained_at.isoformat(),
            "samples": self.samples,
            "seed": self.seed,
            "default_rate": self.default_rate,
            "metrics": {k: v.model_dump() for k, v in self.metrics.items()},
            "numeric_reference": [r.model_dump() for r in self.numeric_reference],
            "categorical_reference": [r.model_dump() for r in self.categorical_reference],
        }
        return json.dumps(card, indent=2, sort_keys=True)

    @classmethod
    def from_card(cls, pipeline: Pipeline, text: str) -> "TrainedModel":
        """A stored model: its pipeline and the card `card_json` wrote."""
        card = json.loads(text)
        return cls(
            pipeline=pipeline,
            metrics={k: ModelMetrics(**v) for k, v in card["metrics"].items()},
            numeric_reference=tuple(NumericReference(**r) for r in card["numeric_reference"]),
            categorical_reference=tuple(
                CategoricalReference(**r) for r in card["categorical_reference"]
            ),
            samples=card["samples"],
            seed=card["seed"],
            default_rate=card["default_rate"],
            trained_at=datetime.fromisoformat(card["trained_at"]),
        )

    def card(self, model_name: str, version: str) -> ModelLoaded:
        """The model card the service publishes; the same version gives the same bytes."""
        return ModelLoaded(
            event_id=uuid5(NS, f"model.loaded/{model_name}/{version}"),
            model_name=model_name,
            model_version=version,
            trained_at=self.trained_at,
            training_samples=self.samples,
            training_seed=self.seed,
            default_rate=self.default_rate,
            metrics=self.metrics,
            numeric_reference=self.numeric_reference,
            categorical_reference=self.categorical_reference,
            occurred_at=self.trained_at,
        )

    def served(self, model_name: str, version: str) -> "ServedModel":
        """This model ready to score under a registry name and version."""
        return ServedModel(Scorer(self.pipeline), self.card(model_name, version))


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A model in service: the scorer and the card describing it."""

    scorer: "Scorer"
    card: ModelLoaded


def feature_matrix(loans: Sequence[ScoringFeatures]) -> np.ndarray:
    """Model inputs as an object matrix: numbers as floats (NaN missing), categories as text."""
    matrix = np.empty((len(loans), len(FEATURES)), dtype=object)
    for row, loan in enumerate(loans):
        for column, name in enumerate(NUMERIC_FEATURES):
            text = getattr(loan, name)
            matrix[row, column] = np.nan if text is None else float(text)
        for offset, name in enumerate(CATEGORICAL_FEATURES, start=len(NUMERIC_FEATURES)):
            matrix[row, offset] = getattr(loan, name)
    return matrix


def preprocessing() -> ColumnTransformer:
    """Median / `unknown` imputation, scaling and one-hot encoding (unknown categories ignored)."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            (
                "impute",
                SimpleImputer(strategy="constant", fill_value="unknown", missing_values=None),
            ),
            ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    numeric_columns = list(range(len(NUMERIC_FEATURES)))
    categorical_columns = list(range(len(NUMERIC_FEATURES), len(FEATURES)))
    return ColumnTransformer(
        [("numeric", numeric, numeric_columns), ("categorical", categorical, categorical_columns)]
    )


def estimators(seed: int) -> dict[str, BaseEstimator]:
    """The model and its baseline, by name."""
    return {
        "xgboost": xgb.XGBClassifier(**XGBOOST_PARAMS, random_state=seed, n_jobs=1),
        "logistic_regression": LogisticRegression(max_iter=1000),
    }


def pipeline(estimator: BaseEstimator) -> Pipeline:
    """Preprocessing followed by `estimator`."""
    return Pipeline([("preprocess", preprocessing()), ("model", estimator)])


def ks_statistic(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Kolmogorov-Smirnov separation of defaulters and others: max(TPR - FPR)."""
    false_positive, true_positive, _ = roc_curve(labels, probabilities)
    return float(np.max(true_positive - false_positive))


def cross_validate(history: History, seed: int, folds: int = FOLDS) -> dict[str, ModelMetrics]:
    """Mean AUC, Gini, KS, precision, recall and F1 of each estimator over stratified folds."""
    matrix, labels = feature_matrix(history.features), history.defaulted
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    results: dict[str, ModelMetrics] = {}
    for name in estimators(seed):
        scores: dict[str, list[float]] = {k: [] for k in ModelMetrics.model_fields}
        for train, test in splitter.split(matrix, labels):
            fitted = pipeline(estimators(seed)[name]).fit(matrix[train], labels[train])
            probabilities = fitted.predict_proba(matrix[test])[:, 1]
            flagged = (probabilities >= DECISION_THRESHOLD).astype(int)
            auc = float(roc_auc_score(labels[test], probabilities))
            scores["auc"].append(auc)
            scores["gini"].append(2 * auc - 1)
            scores["ks"].append(ks_statistic(labels[test], probabilities))
            scores["precision"].append(
                float(precision_score(labels[test], flagged, zero_division=0))
            )
            scores["recall"].append(float(recall_score(labels[test], flagged, zero_division=0)))
            scores["f1"].append(float(f1_score(labels[test], flagged, zero_division=0)))
        results[name] = ModelMetrics(**{k: _four(float(np.mean(v))) for k, v in scores.items()})
    return results


def train(history: History, seed: int, trained_at: datetime, folds: int = FOLDS) -> TrainedModel:
    """Cross-validate both estimators, then fit XGBoost on the whole history."""
    metrics = cross_validate(history, seed, folds)
    matrix = feature_matrix(history.features)
    fitted = pipeline(estimators(seed)["xgboost"]).fit(matrix, history.defaulted)
    return TrainedModel(
        pipeline=fitted,
        metrics=metrics,
        numeric_reference=numeric_reference(matrix),
        categorical_reference=categorical_reference(matrix),
        samples=len(history.features),
        seed=seed,
        default_rate=_four(float(np.mean(history.defaulted))),
        trained_at=trained_at,
    )


def numeric_reference(matrix: np.ndarray) -> tuple[NumericReference, ...]:
    """Each numeric feature's training deciles and the share of loans in each bin."""
    found = []
    for column, name in enumerate(NUMERIC_FEATURES):
        values = matrix[:, column].astype(float)
        present = values[~np.isnan(values)]
        edges = sorted({_six(float(e)) for e in np.percentile(present, DECILES)}, key=Decimal)
        floats = np.array([float(e) for e in edges])
        bins = np.searchsorted(floats, present, side="left")
        counts = np.bincount(bins, minlength=len(edges) + 1)
        found.append(
            NumericReference(
                feature=name,
                edges=tuple(edges),
                shares=tuple(_six(count / len(values)) for count in counts),
                missing_share=_six((len(values) - len(present)) / len(values)),
            )
        )
    return tuple(found)


def categorical_reference(matrix: np.ndarray) -> tuple[CategoricalReference, ...]:
    """Each categorical feature's training categories and their shares (then `other`)."""
    found = []
    for offset, name in enumerate(CATEGORICAL_FEATURES, start=len(NUMERIC_FEATURES)):
        column = matrix[:, offset]
        categories = sorted({value for value in column if value is not None})
        counts = [int(np.sum(column == value)) for value in categories]
        other = len(column) - sum(counts)
        found.append(
            CategoricalReference(
                feature=name,
                categories=tuple(categories),
                shares=tuple(_six(count / len(column)) for count in (*counts, other)),
            )
        )
    return tuple(found)


class Scorer:
    """A fitted pipeline ready to score batches: P(default) and per-feature TreeSHAP values."""

    def __init__(self, fitted: Pipeline) -> None:
        self.preprocess: ColumnTransformer = fitted.named_steps["preprocess"]
        booster: xgb.Booster = fitted.named_steps["model"].get_booster()
        # One thread: deterministic sums, and one batch per core is how a worker scales.
        booster.set_param({"nthread": 1})
        self.booster = booster
        self.grouping = _grouping(self.preprocess)

    def predict(self, loans: Sequence[ScoringFeatures]) -> list[Prediction]:
        """Each loan's P(default) and contributions, in FEATURES order."""
        if not loans:
            return []
        transformed = np.asarray(self.preprocess.transform(feature_matrix(loans)), dtype=float)
        # nthread=1 here too: building a DMatrix with every thread cost 20x the CPU on a batch.
        matrix = xgb.DMatrix(transformed, nthread=1)
        contributions = self.booster.predict(matrix, pred_contribs=True)
        contributions = contributions.astype(np.float64)
        margins = contributions.sum(axis=1)
        probabilities = 1.0 / (1.0 + np.exp(-margins))
        per_feature = contributions[:, :-1] @ self.grouping
        return [
            Prediction(float(probability), tuple(float(value) for value in row))
            for probability, row in zip(probabilities, per_feature, strict=True)
        ]


def _grouping(preprocess: ColumnTransformer) -> np.ndarray:
    """A 0/1 matrix summing transformed columns into the model inputs they came from."""
    names = preprocess.get_feature_names_out()
    grouping = np.zeros((len(names), len(FEATURES)))
    for column, name in enumerate(names):
        # `numeric__x0`, `categorical__x7_condo`: the input's index follows the `x`.
        index = int(name.split("__", 1)[1][1:].split("_", 1)[0])
        grouping[column, index] = 1.0
    return grouping


def _six(value: float) -> str:
    return str(Decimal(repr(float(value))).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN))


def _four(value: float) -> str:
    return str(Decimal(repr(float(value))).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))
