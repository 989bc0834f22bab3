"""The reporting worker: `python -m services.reporting.main` (health: REPORTING_HTTP_PORT)."""

from faststream.asgi import AsgiFastStream

from services.common.db import make_engine, upgrade
from services.common.health import database_ready, storage_ready
from services.common.logs import configure_logging
from services.common.runtime import BrokerPublisher, build_worker_app, make_broker, serve, utc_now
from services.common.storage import storage_from_settings
from services.reporting.deciding import DecisionService
from services.reporting.handlers import subscribe
from services.reporting.service import ReportingService
from services.reporting.settings import ReportingSettings

ALEMBIC_SECTION = "reporting"


def build_app(settings: ReportingSettings) -> AsgiFastStream:
    """Wire the broker, the database, storage, the service and the health/metrics app."""
    broker = make_broker(settings)
    engine = make_engine(settings, pool_size=settings.db_pool_size)
    storage = storage_from_settings(settings)
    publisher = BrokerPublisher(broker, settings)
    service = ReportingService(settings, engine, storage, publisher, utc_now)
    decisions = DecisionService(settings, engine, storage, publisher, utc_now)
    subscribe(broker, settings, service, decisions)

    async def migrate() -> None:
        if settings.migrate_on_start:
            await upgrade(engine, ALEMBIC_SECTION)

    async def close_database() -> None:
        await engine.dispose()

    return build_worker_app(
        settings,
        broker,
        ready_checks=(database_ready(engine), storage_ready(storage)),
        on_startup=(migrate,),
        on_shutdown=(close_database,),
    )


def main() -> None:
    """Run the reporting worker until SIGTERM."""
    settings = ReportingSettings()
    configure_logging(settings)
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
