"""`loan-engine stack ...`: the local stack's command line (progress on stderr)."""

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated

import typer

from services.cli.stack import kafka, lifecycle, migrations, postgres, services, supervisor
from services.cli.stack import topics as topic_admin
from services.cli.stack.errors import StackError
from services.cli.stack.settings import StackSettings

app = typer.Typer(help="The local stack: Kafka, PostgreSQL and every service, without Docker.")


def progress(message: str) -> None:
    """Progress goes to stderr so stdout stays machine-readable."""
    typer.echo(message, err=True)


def fail(error: StackError) -> typer.Exit:
    """Print a stack error for people and end with exit code 1."""
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


@app.command()
def up(
    with_monitoring: Annotated[
        bool, typer.Option("--with-monitoring", help="Also run Prometheus and Grafana.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="End with the status as JSON.")] = False,
) -> None:
    """Start the broker, the database and every service (again: keeps what runs)."""
    try:
        report = lifecycle.up(StackSettings(), progress, with_monitoring=with_monitoring)
    except StackError as error:
        raise fail(error) from error
    typer.echo(json.dumps(report.to_json()) if as_json else report.render())
    for process in report.failed:
        progress(f"{process.name} failed: {process.detail}")
    if report.failed:
        raise typer.Exit(1)


@app.command()
def down(
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Then delete the stack's data for good: its PostgreSQL cluster (also one kept "
            "under /var/tmp/loan-engine), broker log, storage, logs and state.",
        ),
    ] = False,
) -> None:
    """Stop exactly what `up` started; its data stays for the next `up` unless --purge."""
    try:
        if purge:
            stopped, removed = lifecycle.purge(StackSettings(), progress)
        else:
            stopped, removed = lifecycle.down(StackSettings(), progress), []
    except StackError as error:
        raise fail(error) from error
    progress(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    if purge:
        progress(f"deleted: {', '.join(map(str, removed))}" if removed else "no data to delete")


@app.command()
def sweep(
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete them (those whose server is not running).")
    ] = False,
) -> None:
    """List the PostgreSQL clusters under /var/tmp/loan-engine that no stack links to any more:
    a state folder deleted, or a checkout moved since (check which before --delete)."""
    root = postgres.OUTSIDE_ROOT
    try:
        if delete:
            removed = postgres.sweep_orphans(root, progress)
            progress(f"deleted: {', '.join(map(str, removed))}" if removed else "nothing to delete")
            return
        found = postgres.orphans(root)
    except StackError as error:
        raise fail(error) from error
    for folder in found:
        typer.echo(f"{folder}\t(made for {postgres.owner(folder)})")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Each process and the broker/database health."""
    report = lifecycle.status(StackSettings())
    typer.echo(json.dumps(report.to_json()) if as_json else report.render())


def _log_files(settings: StackSettings) -> dict[str, Path]:
    files = {path.stem: path for path in sorted(settings.logs_dir.glob("*.log"))}
    files["postgres"] = postgres.log_file(settings)
    return {name: path for name, path in files.items() if path.exists()}


@app.command()
def logs(
    service: Annotated[str | None, typer.Argument(help="kafka, postgres, gateway, ...")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines to show.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """Show the logs of one process, or the last lines of every log."""
    settings = StackSettings()
    files = _log_files(settings)
    if service is None:
        for name, path in files.items():
            typer.echo(f"==> {name} ({path}) <==")
            typer.echo(supervisor.tail(path, lines))
        return
    path = files.get(service) or services.log_file(settings, service)
    if not path.exists():
        known = ", ".join(files) or "none yet"
        typer.secho(f"no log for {service} (logs: {known})", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    typer.echo(supervisor.tail(path, lines))
    if follow:
        _follow(path)


def _follow(path: Path) -> None:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        try:
            while True:
                chunk = handle.read()
                if chunk:
                    typer.echo(chunk.decode("utf-8", errors="replace"), nl=False)
                else:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            return


@app.command()
def prepare() -> None:
    """Fetch the Kafka jars and find (or, as root, install) PostgreSQL: no process is started."""
    settings = StackSettings()
    try:
        kafka.java_path(settings)
        libs = kafka.resolve_jars(settings, progress)
        progress(f"kafka jars: {libs}")
        if not settings.database_url:
            progress(f"postgresql binaries: {postgres.bin_dir(settings, progress)}")
    except StackError as error:
        raise fail(error) from error


@app.command()
def topics(
    bootstrap_servers: Annotated[
        str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Broker to create them on.")
    ] = "127.0.0.1:9092",
    prefix: Annotated[str, typer.Option(envvar="TOPIC_PREFIX", help="Topic name prefix.")] = (
        "loan-engine."
    ),
) -> None:
    """Create every registry topic that is missing (partitions and retention from the registry)."""
    names = asyncio.run(topic_admin.ensure_topics(bootstrap_servers, prefix))
    progress(f"{len(names)} topics present under {prefix!r} on {bootstrap_servers}")


@app.command()
def migrate() -> None:
    """Apply every Alembic migration of the project to DATABASE_URL (or the private cluster)."""
    settings = StackSettings()
    environment = {"DATABASE_URL": postgres.database_url(settings)}
    try:
        applied = migrations.upgrade_all(settings.project_dir, environment, progress)
    except StackError as error:
        raise fail(error) from error
    progress(f"migrated: {', '.join(applied)}" if applied else "no migrations in this checkout")
