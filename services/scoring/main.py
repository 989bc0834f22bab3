"""The scoring worker: `python -m services.scoring.main` (health, metrics: SCORING_HTTP_PORT).

After start it loads the registry's production model in the background; with
`SCORING_TRAIN_IF_MISSING` (default) it first trains and promotes one when there is none, so a
fresh machine scores with no extra step. `/health` answers meanwhile, `/health/ready` once the
model is there.
"""

import asyncio

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker

from services.common.consumer import settle_heap
from services.common.logs import configure_logging
from services.common.runtime import build_worker_app, make_broker, serve
from services.scoring.domain import load_policy
from services.scoring.handlers import publish_model_card, subscribe
from services.scoring.model import ServedModel
from services.scoring.serving import ModelSlot
from services.scoring.settings import ScoringSettings


def production_model(settings: ScoringSettings) -> ServedModel:
    """The registry's production model, trained first when missing and the settings allow."""
    from services.scoring import registry  # MLflow is imported only where it is used

    if settings.train_if_missing:
        registry.ensure_production_model(settings)
    return registry.load_production(settings)


async def load_and_announce(
    broker: KafkaBroker, settings: ScoringSettings, slot: ModelSlot
) -> None:
    """Fill the slot (unless given a model), settle the heap, and publish the model's card."""
    served = slot.model or await slot.fill(lambda: production_model(settings))
    # The model and the libraries it imported live as long as the process: frozen, no
    # collection scans them again (as `settle_heap` did for the rest after start-up).
    settle_heap()
    if served is not None:
        await publish_model_card(broker, settings, served)


def build_app(settings: ScoringSettings, model: ServedModel | None = None) -> AsgiFastStream:
    """Wire the broker, the model slot, the routing policy and the health/metrics app.

    Without `model`, the production model is loaded from the registry after start.
    """
    broker = make_broker(settings)
    slot = ModelSlot(model)
    subscribe(broker, settings, slot, load_policy(settings.policy_version))
    app = build_worker_app(settings, broker, ready_checks=(slot.ready_check(),))
    tasks: set[asyncio.Task[None]] = set()

    @app.after_startup
    async def start_loading() -> None:
        task = asyncio.create_task(load_and_announce(broker, settings, slot))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return app


def main() -> None:
    """Run the scoring worker until SIGTERM."""
    settings = ScoringSettings()
    configure_logging(settings)
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
