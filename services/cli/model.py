"""`loan-engine model train | list | promote VERSION`: the scoring model's registry (SPEC §8).

MLflow and the model libraries are imported inside the commands, so other commands start fast.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from services.cli import reach
from services.cli.options import JsonOption
from services.scoring.settings import ScoringSettings

if TYPE_CHECKING:
    from services.scoring.registry import VersionInfo


def _settings() -> ScoringSettings:
    """Scoring's settings as the running stack has them (its registry); the environment wins."""
    return ScoringSettings(_env_file=reach.env_files())  # type: ignore[call-arg]


app = typer.Typer(
    help="The scoring model: train on a synthetic history, list versions, promote to production.",
    no_args_is_help=True,
)


def _payload(info: VersionInfo) -> dict[str, Any]:
    payload = asdict(info)
    payload["metrics"] = {name: metrics.model_dump() for name, metrics in info.metrics.items()}
    return payload


def _line(info: VersionInfo) -> str:
    xgboost = info.metrics.get("xgboost")
    baseline = info.metrics.get("logistic_regression")
    scores = ""
    if xgboost is not None and baseline is not None:
        scores = (
            f"  AUC {xgboost.auc} (baseline {baseline.auc})  KS {xgboost.ks} "
            f"(baseline {baseline.ks})  Gini {xgboost.gini}"
        )
    return f"v{info.version:<4} {info.stage:<10} {info.samples:>7} loans  {info.trained_at}{scores}"


@app.command("train")
def train_command(
    samples: Annotated[
        int, typer.Option("--samples", min=100, help="Loans in the synthetic history.")
    ] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same history.")] = 2026,
    as_json: JsonOption = False,
) -> None:
    """Train XGBoost and the logistic baseline with 5-fold CV; register the model as staging."""
    from services.scoring.registry import train_and_register

    settings = _settings()
    typer.echo(f"training on {samples} synthetic loans (seed {seed})...", err=True)
    started = time.monotonic()
    info = train_and_register(settings, samples, seed)
    seconds = round(time.monotonic() - started, 1)
    typer.echo(f"registered version {info.version} as staging in {seconds}s", err=True)
    payload = {**_payload(info), "seconds": seconds}
    typer.echo(json.dumps(payload) if as_json else _line(info))


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """Every registered version with its stage and cross-validated metrics, newest first."""
    from services.scoring.registry import list_versions

    versions = list_versions(_settings())
    if as_json:
        typer.echo(json.dumps({"versions": [_payload(info) for info in versions]}))
        return
    for info in versions:
        typer.echo(_line(info))
    if not versions:
        typer.echo("no model registered: run `loan-engine model train`", err=True)


@app.command("promote")
def promote_command(
    version: Annotated[str, typer.Argument(help="The registered version to serve.")],
    as_json: JsonOption = False,
) -> None:
    """Make VERSION the production model (the one it replaces is archived)."""
    from services.scoring.errors import UnknownModelVersion
    from services.scoring.registry import promote

    try:
        info = promote(_settings(), version)
    except UnknownModelVersion as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from error
    typer.echo("restart the scoring service to serve it", err=True)
    typer.echo(json.dumps(_payload(info)) if as_json else _line(info))
