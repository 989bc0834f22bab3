"""The pricing worker: `python -m services.pricing.main` (health, metrics: PRICING_HTTP_PORT)."""

from faststream.asgi import AsgiFastStream

from services.common.logs import configure_logging
from services.common.runtime import build_worker_app, make_broker, serve
from services.pricing.handlers import subscribe
from services.pricing.settings import PricingSettings


def build_app(settings: PricingSettings) -> AsgiFastStream:
    """Wire the broker, the handler and the health/metrics app."""
    # Each handler waits for its output's acknowledgement: lingering only delays it (and costs CPU).
    broker = make_broker(settings, linger_ms=0)
    subscribe(broker, settings)
    return build_worker_app(settings, broker)


def main() -> None:
    """Run the pricing worker until SIGTERM."""
    settings = PricingSettings()
    configure_logging(settings)
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
