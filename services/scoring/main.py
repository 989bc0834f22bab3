"""The scoring worker: `python -m services.scoring.main` (health, metrics: SCORING_HTTP_PORT).

At start it loads the registry's production model; with `SCORING_TRAIN_IF_MISSING` (default) it
trains and promotes one first when there is none, so a fresh machine scores with no extra step.
"""

from faststream.asgi import AsgiFastStream

from services.common.logs import configure_logging
from services.common.runtime import build_worker_app, make_broker, serve
from services.scoring.domain import load_policy
from services.scoring.handlers import model_card_publisher, subscribe
from services.scoring.model import ServedModel
from services.scoring.settings import ScoringSettings


def build_app(settings: ScoringSettings, model: ServedModel) -> AsgiFastStream:
    """Wire the broker, the model, the routing policy and the health/metrics app."""
    broker = make_broker(settings)
    subscribe(broker, settings, model, load_policy(settings.policy_version))
    app = build_worker_app(settings, broker)
    app.after_startup(model_card_publisher(broker, settings, model))
    return app


def production_model(settings: ScoringSettings) -> ServedModel:
    """The registry's production model, trained first when missing and the settings allow."""
    from services.scoring import registry  # MLflow is imported only by processes that need it

    if settings.train_if_missing:
        registry.ensure_production_model(settings)
    return registry.load_production(settings)


def main() -> None:
    """Run the scoring worker until SIGTERM."""
    settings = ScoringSettings()
    configure_logging(settings)
    serve(build_app(settings, production_model(settings)), settings)


if __name__ == "__main__":
    main()
