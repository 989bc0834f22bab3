"""`stack up`, `down` and `status`: start exactly one set of processes, stop exactly those."""

import asyncio
import contextlib
import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from services.cli.stack import (
    envfile,
    gate,
    kafka,
    migrations,
    monitoring,
    ports,
    postgres,
    procfile,
    restarts,
    services,
    state,
    supervision,
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
    """Serialise `up` and `down` on one state folder (two terminals, two test sessions).

    A purge deletes the lock file (and the folder) while holding it: whoever was waiting then
    holds a lock on a file no longer at the path, so it takes the lock again on the path's file.
    """
    path = settings.state / "lock"
    while True:
        settings.state.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            current = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        handle.close()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def infra_environment(settings: StackSettings) -> dict[str, str]:
    """The variables written to `.stack/env`: infra locations and every service's HTTP port."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": postgres.database_url(settings),
        "TOPIC_PREFIX": settings.topic_prefix,
        "STORAGE_ROOT": str(settings.storage_root),
        # Each stack its own durable service state (ingest's tape spool, scoring's registry):
        # two stacks of one checkout must never share a spool that remembers another's offsets.
        "INGEST_STATE_DIR": str(settings.state / "state" / "ingest"),
        "SCORING_STATE_DIR": str(settings.state / "state" / "scoring"),
        **settings.service_ports_env(),
        **local_secrets(settings.state),
    }


def ensure_kafka(
    settings: StackSettings,
    recorded: state.StackState,
    progress: Progress,
    save: Callable[[], None] | None = None,
) -> bool:
    """Start the broker unless the one we started still runs; True when started now."""
    running = recorded.processes.get(KAFKA)
    if running is not None and supervisor.is_alive(running):
        if not supervisor.wait_until(
            lambda: kafka.healthy(settings.kafka_bootstrap_servers), settings.startup_timeout
        ):
            raise StartFailed(f"the stack's Kafka (pid {running.pid}) runs but does not answer")
        return False
    recorded.processes[KAFKA] = kafka.start(settings, progress)
    (save or (lambda: state.save(settings.state, recorded)))()
    return True


def ensure_database(
    settings: StackSettings,
    recorded: state.StackState,
    progress: Progress,
    save: Callable[[], None] | None = None,
) -> bool:
    """Start the private cluster unless DATABASE_URL is given; True when started now."""
    if settings.database_url:
        if not postgres.healthy(settings.database_url):
            raise StartFailed("DATABASE_URL is set but its database does not answer")
        return False
    started = postgres.start(settings, progress)
    recorded.postgres_private = True
    (save or (lambda: state.save(settings.state, recorded)))()
    return started


def up(settings: StackSettings, progress: Progress, with_monitoring: bool = False) -> StackStatus:
    """Bring the stack up (idempotent: what already runs is kept) and report its status.

    The broker, the database and supervisord start side by side (topics on the broker,
    migrations on the database); then supervisord starts every service that does not run yet.
    """
    with locked(settings):
        recorded = state.load(settings.state)
        for folder in (settings.logs_dir, settings.storage_root):
            folder.mkdir(parents=True, exist_ok=True)
        infra = infra_environment(settings)
        envfile.write(settings.env_file, infra)
        saving = threading.Lock()

        def save() -> None:
            with saving:
                state.save(settings.state, recorded)

        def broker() -> None:
            ensure_kafka(settings, recorded, progress, save)
            asyncio.run(
                topics.ensure_topics(settings.kafka_bootstrap_servers, settings.topic_prefix)
            )
            progress(f"Kafka answers on {settings.kafka_bootstrap_servers}, topics present")

        def database() -> None:
            ensure_database(settings, recorded, progress, save)
            migrated = migrations.upgrade_all(settings.project_dir, infra, progress)
            progress(f"PostgreSQL answers, migrated: {', '.join(migrated) or 'nothing'}")

        entries = procfile.load(settings.procfile)
        runnable = runnable_entries(settings, entries, progress)

        def daemon() -> None:
            ensure_supervisord(settings, recorded, runnable, infra, progress, save)

        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="stack-up") as pool:
            jobs = {"daemon": pool.submit(daemon), "broker": pool.submit(broker)}
            jobs["database"] = pool.submit(database)
            # The broker's own services start while the database may still be migrating.
            jobs["daemon"].result()
            jobs["broker"].result()
            start_programs(
                settings, [e for e in runnable if e.name in services.BROKER_ONLY], progress
            )
            jobs["database"].result()
        start_programs(settings, runnable, progress)
        if with_monitoring:
            start_monitoring(settings, recorded, progress)
        supervisor.wait_until(
            lambda: settled(settings, runnable), settings.service_ready_timeout, interval=0.5
        )
    return status(settings)


def runnable_entries(
    settings: StackSettings, entries: list[procfile.Entry], progress: Progress
) -> list[procfile.Entry]:
    """The Procfile entries whose module exists (the others are reported, never started)."""
    runnable = []
    for entry in entries:
        missing = procfile.missing_module(settings.project_dir, entry)
        if missing is not None:
            progress(f"not starting {entry.name}: module {missing} does not exist")
        else:
            runnable.append(entry)
    return runnable


def ensure_supervisord(
    settings: StackSettings,
    recorded: state.StackState,
    runnable: list[procfile.Entry],
    infra: dict[str, str],
    progress: Progress,
    save: Callable[[], None],
) -> None:
    """This stack's supervisord, running the given programs (none started yet by it).

    A supervisord whose programs or environment differ from today's is replaced (its services
    stop with it); orphans of a supervisord that was killed are stopped before it starts.
    """
    environment = services.process_environment(infra)
    config = supervision.render_config(settings, runnable, infra)
    daemon = recorded.processes.get(supervision.NAME)
    alive = daemon is not None and supervisor.is_alive(daemon) and supervision.answers(settings)
    if alive and supervision.running_config(settings) != config:
        progress("the services' commands or environment changed: restarting supervisord")
        alive = False
    if not alive:
        # Stops a supervisord that runs the wrong programs or hangs, and orphans of a killed one.
        supervision.stop_daemon(settings, daemon, progress)
        progress("starting supervisord")
        recorded.processes[supervision.NAME] = supervision.start_daemon(
            settings, config, environment
        )
        save()


def start_programs(
    settings: StackSettings, runnable: list[procfile.Entry], progress: Progress
) -> None:
    """Ask supervisord to start every program that is not running (or restarting) already."""
    known = supervision.programs(settings)
    for entry in runnable:
        program = known.get(entry.name)
        if program is not None and program.statename in supervision.ALIVE_STATES:
            continue
        progress(f"starting {entry.name}")
        refused = supervision.start_program(settings, entry.name)
        if refused is not None:
            progress(f"not starting {entry.name}: {refused}")


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
    with locked(settings):
        return _stop(settings, progress)


def _stop(settings: StackSettings, progress: Progress) -> list[str]:
    stopped = []
    recorded = state.load(settings.state)
    # Services before the infrastructure they talk to, so they shut down cleanly.
    stopped += supervision.stop_daemon(
        settings, recorded.processes.pop(supervision.NAME, None), progress
    )
    state.save(settings.state, recorded)
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


def state_entries(settings: StackSettings) -> list[Path]:
    """Everything the stack writes in its state folder (but the PostgreSQL cluster)."""
    folder = settings.state
    names = ("crashes", "state", "prometheus", "grafana", "state.tmp", "secrets.env")
    return [
        kafka.kafka_dir(settings),
        settings.logs_dir,
        settings.storage_root,
        settings.env_file,
        state.state_path(folder),
        supervision.config_file(settings),
        supervision.socket_file(settings),
        folder / "supervisord.pid",
        folder / "supervisord.out",
        *(folder / name for name in names),
    ]


def purge(settings: StackSettings, progress: Progress) -> tuple[list[str], list[Path]]:
    """`down`, then delete the stack's data for good: the PostgreSQL cluster (under OUTSIDE_ROOT
    too), the broker's log, storage, logs and state; the state folder itself once empty.

    Only what the stack writes is deleted: other files in the state folder are left and named.
    Refused, deleting nothing, while the cluster's server still runs. Returns what was stopped
    and what was deleted.
    """
    if not settings.state.exists():
        return [], []
    with locked(settings):
        stopped = _stop(settings, progress)
        removed = postgres.purge(settings, progress)
        for path in state_entries(settings):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            else:
                continue
            removed.append(path)
        lock = settings.state / "lock"
        left = sorted(p.name for p in settings.state.iterdir() if p != lock)
        if not left:
            # The lock file last, still held: a waiter notices and takes the lock afresh.
            lock.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # someone wrote into it meanwhile: it stays
                settings.state.rmdir()
                removed.append(settings.state)
    if left:
        others = ", ".join(left)
        progress(f"left {settings.state}: it holds files the stack did not write ({others})")
    return stopped, removed


def settled(settings: StackSettings, runnable: list[procfile.Entry]) -> bool:
    """Whether no program is still starting or restarting (a cheap check: one XML-RPC call and
    the health URLs; who holds each port is checked once, by the final status)."""
    known = supervision.programs(settings)
    for entry in runnable:
        url = services.health_url(settings, entry.name)
        if services.state_of(known.get(entry.name), url, None) in (
            services.RUNNING,
            services.RESTARTING,
        ):
            return False
    return True


def service_rows(
    settings: StackSettings, entries: list[procfile.Entry], recorded: state.StackState
) -> list[ProcessStatus]:
    """One row per Procfile process: supervisord's view, health, restarts and last exit."""
    daemon = recorded.processes.get(supervision.NAME)
    known = supervision.programs(settings) if daemon and supervisor.is_alive(daemon) else {}
    log = supervision.log_file(settings)
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    history = restarts.read(text)
    listening = ports.listeners()
    rows = []
    for entry in entries:
        program = known.get(entry.name)
        missing = procfile.missing_module(settings.project_dir, entry)
        url = services.health_url(settings, entry.name)
        current = services.state_of(program, url, missing, listening)
        past = history.get(entry.name, restarts.History())
        detail = ""
        looping = crash_loop(settings, entry.name, program)
        if looping is not None:
            current, detail = looping
        elif missing is not None:
            detail = f"module {missing} does not exist"
        elif current in (services.FAILED, services.RESTARTING):
            what = program.description if program else "exited"
            detail = f"{what}; see {services.log_file(settings, entry.name)}"
        elif current == services.ORPHANED:
            detail = "its supervisord is gone; `stack up` or `stack down` stops the orphan"
        elif current == services.RUNNING and program is not None and services.answers(url):
            detail = f"{url} is answered by another process, not pid {program.pid}"
        rows.append(
            ProcessStatus(
                name=entry.name,
                pid=pid_of(program, current, url, listening),
                state=current,
                health_url=url,
                metrics_url=services.metrics_url(settings, entry.name),
                detail=detail,
                restarts=past.restarts,
                last_exit=past.last_exit,
            )
        )
    return rows


def crash_loop(
    settings: StackSettings, name: str, program: supervision.ProgramInfo | None
) -> tuple[str, str] | None:
    """A program in a crash loop: `restarting` while the gate waits, `failed` once it gave up."""
    if program is None or program.statename not in ("STARTING", "RUNNING", "EXITED", "BACKOFF"):
        return None
    record = gate.Record.load(gate.record_file(settings.state, name))
    described = gate.describe(record, supervision.crash_policy(settings), time.time())
    if described is None:
        return None
    return (services.FAILED if record.gave_up else services.RESTARTING), described


def pid_of(
    program: supervision.ProgramInfo | None,
    current: str,
    url: str | None,
    listening: dict[int, int | None],
) -> int | None:
    """The service's pid: supervisord's, an orphan's, or none once it failed (a given-up
    program's last moments are the crash-loop gate's, not the service's)."""
    if program is None:
        return orphan_pid(current, url, listening)
    return None if current == services.FAILED else program.pid


def orphan_pid(current: str, url: str | None, listening: dict[int, int | None]) -> int | None:
    """The pid holding an orphan's port, when the system tells."""
    port = urlsplit(url).port if url and current == services.ORPHANED else None
    return listening.get(port) if port is not None else None


def status(settings: StackSettings) -> StackStatus:
    """What runs, what answers, and what failed."""
    recorded = state.load(settings.state)
    infra = envfile.read(settings.env_file) or infra_environment(settings)
    entries = procfile.load(settings.procfile) if settings.procfile.is_file() else []
    rows = service_rows(settings, entries, recorded)
    for monitor in monitoring.monitors(settings):
        spawned = recorded.processes.get(monitor.name)
        if spawned is None:
            continue
        rows.append(
            ProcessStatus(
                name=monitor.name,
                pid=spawned.pid,
                state=services.spawned_state(spawned, monitor.health_url()),
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
