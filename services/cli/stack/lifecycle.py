"""`stack up`, `down` and `status`: start exactly one set of processes, stop exactly those."""

import asyncio
import contextlib
import fcntl
from collections.abc import Callable, Iterator

from services.cli.stack import (
    envfile,
    kafka,
    migrations,
    monitoring,
    postgres,
    procfile,
    services,
    state,
    supervisor,
    topics,
)
from services.cli.stack.errors import StartFailed
from services.cli.stack.secrets import local_secrets
from services.cli.stack.settings import StackSettings
from services.cli.stack.status import ProcessStatus, StackStatus

Progress = Callable[[str], None]

KAFKA = "kafka"
MONITOR_NAMES = ("prometheus", "grafana")


@contextlib.contextmanager
def locked(settings: StackSettings) -> Iterator[None]:
    """Serialise `up` and `down` on one state folder (two terminals, two test sessions)."""
    settings.state.mkdir(parents=True, exist_ok=True)
    with (settings.state / "lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def infra_environment(settings: StackSettings) -> dict[str, str]:
    """The variables written to `.stack/env`: infra locations and every service's HTTP port."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": postgres.database_url(settings),
        "TOPIC_PREFIX": settings.topic_prefix,
        "STORAGE_ROOT": str(settings.storage_root),
        **settings.service_ports_env(),
        **local_secrets(settings.state),
    }


def ensure_kafka(settings: StackSettings, recorded: state.StackState, progress: Progress) -> bool:
    """Start the broker unless the one we started still runs; True when started now."""
    running = recorded.processes.get(KAFKA)
    if running is not None and supervisor.is_alive(running):
        if not supervisor.wait_until(
            lambda: kafka.healthy(settings.kafka_bootstrap_servers), settings.startup_timeout
        ):
            raise StartFailed(f"the stack's Kafka (pid {running.pid}) runs but does not answer")
        return False
    recorded.processes[KAFKA] = kafka.start(settings, progress)
    state.save(settings.state, recorded)
    return True


def ensure_database(
    settings: StackSettings, recorded: state.StackState, progress: Progress
) -> bool:
    """Start the private cluster unless DATABASE_URL is given; True when started now."""
    if settings.database_url:
        if not postgres.healthy(settings.database_url):
            raise StartFailed("DATABASE_URL is set but its database does not answer")
        return False
    started = postgres.start(settings, progress)
    recorded.postgres_private = True
    state.save(settings.state, recorded)
    return started


def up(settings: StackSettings, progress: Progress, with_monitoring: bool = False) -> StackStatus:
    """Bring the stack up (idempotent: what already runs is kept) and report its status."""
    with locked(settings):
        recorded = state.load(settings.state)
        for folder in (settings.logs_dir, settings.storage_root):
            folder.mkdir(parents=True, exist_ok=True)
        ensure_kafka(settings, recorded, progress)
        ensure_database(settings, recorded, progress)
        asyncio.run(topics.ensure_topics(settings.kafka_bootstrap_servers, settings.topic_prefix))
        infra = infra_environment(settings)
        envfile.write(settings.env_file, infra)
        migrations.upgrade_all(settings.project_dir, infra, progress)
        entries = procfile.load(settings.procfile)
        for entry in entries:
            running = recorded.processes.get(entry.name)
            if running is not None and supervisor.is_alive(running):
                continue
            missing = procfile.missing_module(settings.project_dir, entry)
            if missing is not None:
                progress(f"not starting {entry.name}: module {missing} does not exist")
                recorded.processes.pop(entry.name, None)
                continue
            progress(f"starting {entry.name}")
            recorded.processes[entry.name] = services.start(settings, entry, infra)
            state.save(settings.state, recorded)
        if with_monitoring:
            start_monitoring(settings, recorded, progress)
        names = [entry.name for entry in entries]
        supervisor.wait_until(
            lambda: all(
                services.state_of(
                    recorded.processes.get(name), services.health_url(settings, name), None
                )
                != services.RUNNING
                for name in names
            ),
            settings.service_ready_timeout,
            interval=0.5,
        )
    return status(settings)


def start_monitoring(
    settings: StackSettings, recorded: state.StackState, progress: Progress
) -> None:
    """Start Prometheus and Grafana when installed and configured; say what is missing."""
    for monitor in monitoring.monitors(settings):
        running = recorded.processes.get(monitor.name)
        if running is not None and supervisor.is_alive(running):
            continue
        if monitor.argv is None:
            progress(f"not starting {monitor.name}: {monitor.missing}")
            continue
        progress(f"starting {monitor.name} on {monitor.health_url()}")
        recorded.processes[monitor.name] = monitoring.start(settings, monitor)
        state.save(settings.state, recorded)


def down(settings: StackSettings, progress: Progress) -> list[str]:
    """Stop exactly what `up` started (services first, the broker and database last)."""
    stopped = []
    with locked(settings):
        recorded = state.load(settings.state)
        # Services before the infrastructure they talk to, so they shut down cleanly.
        order = [name for name in recorded.processes if name != KAFKA]
        if KAFKA in recorded.processes:
            order.append(KAFKA)
        for name in order:
            spawned = recorded.processes[name]
            if supervisor.is_alive(spawned):
                progress(f"stopping {name} (pid {spawned.pid})")
                supervisor.stop(spawned, settings.stop_timeout)
                stopped.append(name)
            del recorded.processes[name]
            state.save(settings.state, recorded)
        if recorded.postgres_private:
            progress("stopping PostgreSQL")
            postgres.stop(settings)
            recorded.postgres_private = False
            stopped.append("postgres")
        state.save(settings.state, recorded)
    return stopped


def status(settings: StackSettings) -> StackStatus:
    """What runs, what answers, and what failed."""
    recorded = state.load(settings.state)
    infra = envfile.read(settings.env_file) or infra_environment(settings)
    rows = []
    entries = procfile.load(settings.procfile) if settings.procfile.is_file() else []
    for entry in entries:
        spawned = recorded.processes.get(entry.name)
        missing = procfile.missing_module(settings.project_dir, entry)
        url = services.health_url(settings, entry.name)
        current = services.state_of(spawned, url, missing)
        detail = ""
        if missing is not None:
            detail = f"module {missing} does not exist"
        elif current == services.FAILED:
            detail = f"exited; see {services.log_file(settings, entry.name)}"
        rows.append(
            ProcessStatus(
                name=entry.name,
                pid=spawned.pid if spawned is not None and current != services.STOPPED else None,
                state=current,
                health_url=url,
                metrics_url=services.metrics_url(settings, entry.name),
                detail=detail,
            )
        )
    for monitor in monitoring.monitors(settings):
        spawned = recorded.processes.get(monitor.name)
        if spawned is None:
            continue
        rows.append(
            ProcessStatus(
                name=monitor.name,
                pid=spawned.pid,
                state=services.state_of(spawned, monitor.health_url(), None),
                health_url=monitor.health_url(),
                metrics_url=monitor.metrics_url(),
            )
        )
    bootstrap = infra.get("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
    database = infra.get("DATABASE_URL", postgres.database_url(settings))
    return StackStatus(
        kafka_bootstrap_servers=bootstrap,
        kafka_healthy=kafka.healthy(bootstrap),
        postgres_url=database,
        postgres_healthy=postgres.healthy(database),
        gateway_url=f"http://127.0.0.1:{settings.gateway_http_port}",
        processes=tuple(rows),
    )
