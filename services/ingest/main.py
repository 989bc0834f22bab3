"""The ingest worker: `python -m services.ingest.main` (health and metrics on INGEST_HTTP_PORT)."""

from faststream.asgi import AsgiFastStream

from services.common.dead_letters import broker_publisher
from services.common.health import storage_ready
from services.common.logs import configure_logging
from services.common.runtime import BrokerPublisher, build_worker_app, make_broker, serve
from services.common.storage import storage_from_settings
from services.ingest.handlers import TapeConsumer, broker_batch_sender, subscribe_runs
from services.ingest.service import IngestService
from services.ingest.settings import IngestSettings
from services.ingest.spool import Spool, StartedRuns


def build_app(settings: IngestSettings) -> AsgiFastStream:
    """Wire the broker, the run and tape consumers, storage and the health/metrics app."""
    broker = make_broker(settings)
    storage = storage_from_settings(settings)
    publisher = BrokerPublisher(broker, settings)
    send_batch = broker_batch_sender(broker, settings)

    def service() -> IngestService:
        # Each consumer gets its own SQLite connection: both run on the loop, interleaved.
        return IngestService(settings, storage, publisher, send_batch, Spool(settings.spool_path))

    runs = service()
    started = StartedRuns(settings.spool_path)
    tapes = TapeConsumer(settings, service(), broker_publisher(broker, settings))
    subscribe_runs(broker, settings, runs, started)

    async def abandon_tapes() -> None:
        runs.stop()
        tapes.service.stop()

    async def close_state() -> None:
        for database in (runs.spool, tapes.spool, started):
            database.close()

    app = build_worker_app(
        settings,
        broker,
        ready_checks=(storage_ready(storage), tapes.ready_check()),
        # Abandon a tape being read first, so the consumers stop within moments of SIGTERM.
        on_shutdown=(abandon_tapes, tapes.stop),
    )
    # The tape consumer publishes through the broker: start it once the broker is connected.
    app.after_startup(tapes.start)
    app.after_shutdown(close_state)
    return app


def main() -> None:
    """Run the ingest worker until SIGTERM."""
    settings = IngestSettings()
    configure_logging(settings)
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
