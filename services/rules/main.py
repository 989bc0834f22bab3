"""The rules worker: `python -m services.rules.main` (health and metrics on RULES_HTTP_PORT)."""

from faststream.asgi import AsgiFastStream

from services.common.logs import configure_logging
from services.common.runtime import build_worker_app, make_broker, serve
from services.rules.domain import load_rule_set
from services.rules.handlers import subscribe
from services.rules.settings import RulesSettings


def build_app(settings: RulesSettings) -> AsgiFastStream:
    """Wire the broker, the rule set and the health/metrics app."""
    # Each handler waits for its output's acknowledgement: lingering only delays it (and costs CPU).
    broker = make_broker(settings, linger_ms=0)
    subscribe(broker, settings, load_rule_set(settings.rule_set_version))
    return build_worker_app(settings, broker)


def main() -> None:
    """Run the rules worker until SIGTERM."""
    settings = RulesSettings()
    configure_logging(settings)
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
