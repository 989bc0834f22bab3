"""`loan-engine run` and `loan-engine runs list|show|wait` (SPEC §6): runs as the log knows them."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar
from uuid import UUID, uuid4

import typer
from aiokafka.errors import KafkaError

from contracts.ids import event_id
from contracts.loans import RunParams
from contracts.run_fold import DONE
from contracts.runs import RunReprocessRequested, RunRequested
from contracts.topics import RUNS
from services.cli import reach
from services.cli.client import (
    CliSettings,
    RunLog,
    RunView,
    describe,
    load_settings,
    result_json,
)
from services.cli.options import (
    IrrTargetOption,
    JsonOption,
    PdateOption,
    SalesTeamOption,
    WaitOption,
)
from services.common.kafka import KafkaPublisher
from services.common.storage import InvalidPath, safe_key, safe_name, storage_from_settings

T = TypeVar("T")

app = typer.Typer(help="Runs: request one, follow it, list what the log knows.")
runs_app = typer.Typer(help="Runs as the log (runs.v1) knows them.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


def progress(message: str) -> None:
    """Progress goes to stderr so stdout stays machine-readable."""
    typer.echo(message, err=True)


def usage_error(message: str) -> typer.Exit:
    """Bad usage: say why, exit 2."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def run_async(work: Coroutine[Any, Any, T], settings: CliSettings) -> T:
    """Run a coroutine; an unreachable stack ends the command with one line and exit 1."""
    try:
        return asyncio.run(work)
    except KafkaError as error:
        reach.kafka_unreachable(settings.kafka_bootstrap_servers, error)
    except LookupError as error:
        reach.fail(f"{error.args[0] if error.args else error}; {reach.START_THE_STACK}")
    except OSError as error:
        reach.fail(reach.reason(error))


def parse_irr_target(text: str | None, default: Decimal) -> Decimal:
    """The IRR target as an exact decimal in (0, 100); exit 2 otherwise."""
    if text is None:
        return default
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise usage_error(f"--irr-target {text!r} is not a number") from None
    if not (value.is_finite() and 0 < value < 100):
        raise usage_error(f"--irr-target must be greater than 0 and less than 100, not {text}")
    return value


def parse_pdate(text: str | None) -> date:
    """The purchase date (ISO 8601), today in UTC by default; exit 2 when malformed."""
    if text is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise usage_error(f"--pdate {text!r} is not a date like 2026-11-23") from None


def parse_run_id(text: str) -> UUID:
    """A run id; exit 2 when it is not a UUID."""
    try:
        return UUID(text)
    except ValueError:
        raise usage_error(f"{text!r} is not a run id (a UUID)") from None


def run_params(
    settings: CliSettings, pdate: str | None, irr_target: str | None, sales_team_id: str | None
) -> RunParams:
    """A run's parameters from the command line."""
    return RunParams(
        irr_target=parse_irr_target(irr_target, settings.default_irr_target),
        pdate=parse_pdate(pdate),
        sales_team_id=sales_team_id,
    )


def print_result(view: RunView, as_json: bool) -> None:
    """The run's result: one JSON line, or a few lines for people."""
    result = result_json(view)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"run {result['run_id']}: {result['status']}")
    if result["error"]:
        typer.echo(f"  error: {result['error']}")
    if result["total_loans"] is not None:
        typer.echo(f"  loans: {result['total_loans']}  balance: {result['total_balance']}")
    if view.status in DONE:
        counts = ", ".join(f"{key} {value}" for key, value in result["dispositions"].items())
        typer.echo(f"  exceptions: {result['exceptions_count']}  dispositions: {counts}")
        for key, location in result["reports"].items():
            typer.echo(f"  {key}: {location}")


def exit_code(view: RunView | None) -> int:
    """0 for a completed run, 1 otherwise (failed, unknown or still going when time ran out)."""
    return 0 if view is not None and view.status in DONE else 1


def follow_progress(run_id: UUID, *, announced: bool = False) -> Callable[[Any], None]:
    """A progress printer of one run's events (others are ignored). `announced`: the command has
    said the run was requested, so the request event itself is not said again."""

    def report(event: Any) -> None:
        if event.run_id != run_id:
            return
        if announced and isinstance(event, RunRequested | RunReprocessRequested):
            return
        progress(f"run {run_id}: {describe(event)}")

    return report


async def follow(
    settings: CliSettings, run_id: UUID, timeout: float | None, *, announced: bool = False
) -> RunView | None:
    """Follow `runs.v1` until the run ends (or the timeout passes), saying each of its events
    once, in log order: those already in the log when the follower starts too."""
    async with RunLog(settings, follow_progress(run_id, announced=announced)) as log:
        return await log.wait(run_id, timeout)


def same_names(files: list[Path]) -> str:
    """The files that share a name (the folder keeps names only), as `a/t.csv, b/t.csv`."""
    by_name: dict[str, list[Path]] = {}
    for path in files:
        by_name.setdefault(path.name, []).append(path)
    return "; ".join(", ".join(map(str, paths)) for paths in by_name.values() if len(paths) > 1)


async def upload(settings: CliSettings, files: list[Path], folder: str) -> None:
    """Copy files into `inputs/{folder}`."""
    storage = storage_from_settings(settings)
    for path in files:
        key = safe_key("inputs", folder, safe_name(path.name))
        await storage.put_file(key, path)
        progress(f"uploaded {path} to {storage.uri(key)}")


async def request(settings: CliSettings, run_id: UUID, params: RunParams, folder: str) -> None:
    """Publish the run request (random run id, created now)."""
    now = datetime.now(UTC)
    requested = RunRequested(
        event_id=event_id("run.requested", run_id),
        run_id=run_id,
        occurred_at=now,
        producer="cli",
        params=params,
        folder=folder,
        requested_by=f"cli:{getpass.getuser()}",
        created_at=now,
    )
    async with KafkaPublisher(settings) as publisher:
        await publisher.publish(RUNS, str(run_id), requested, {"event-type": requested.event_type})


@app.command("run")
def run(
    files: Annotated[
        list[Path] | None,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="Tape files to upload."),
    ] = None,
    folder: Annotated[
        str | None, typer.Option("--folder", help="Folder of the inputs area to run over.")
    ] = None,
    pdate: PdateOption = None,
    irr_target: IrrTargetOption = None,
    sales_team_id: SalesTeamOption = None,
    wait: WaitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload FILES (into --folder, or a new folder named after the run) and request a run."""
    settings = load_settings()
    params = run_params(settings, pdate, irr_target, sales_team_id)
    run_id = uuid4()
    target = folder if folder is not None else (str(run_id) if files else "")
    try:
        safe_key("inputs", target)
        for path in files or []:
            safe_name(path.name)
    except InvalidPath as error:
        raise usage_error(str(error)) from None
    if clashes := same_names(files or []):
        raise usage_error(f"two files would be stored under one name in the folder: {clashes}")
    if files:
        run_async(upload(settings, files, target), settings)
    run_async(request(settings, run_id, params, target), settings)
    progress(f"run {run_id} requested over inputs/{target}")
    if wait is None:
        print_result(RunView(run_id), as_json)
        return
    view = run_async(follow(settings, run_id, wait, announced=True), settings)
    print_result(view or RunView(run_id), as_json)
    raise typer.Exit(exit_code(view))


@runs_app.command("list")
def list_runs(as_json: JsonOption = False) -> None:
    """Every run in the log, oldest first (by creation time)."""
    settings = load_settings()
    known = run_async(_catch_up(settings), settings).values()
    # Partitions interleave in any order: sort by when each run was created.
    runs = sorted(known, key=lambda view: view.created_at or datetime.max.replace(tzinfo=UTC))
    if as_json:
        typer.echo(json.dumps({"runs": [_listed(view) for view in runs]}))
        return
    for view in runs:
        created = view.created_at.isoformat(timespec="seconds") if view.created_at else "-"
        loans = "-" if view.total_loans is None else str(view.total_loans)
        typer.echo(f"{view.run_id}  {view.status:<9}  {created}  {loans:>9}  {view.source or ''}")


@runs_app.command("show")
def show(run_id: str, as_json: JsonOption = False) -> None:
    """One run's state and result."""
    wanted = parse_run_id(run_id)
    settings = load_settings()
    view = run_async(_catch_up(settings), settings).get(wanted)
    if view is None:
        typer.secho(f"error: no run {wanted} in the log", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    print_result(view, as_json)
    raise typer.Exit(0 if view.status != "failed" else 1)


@runs_app.command("wait")
def wait_for(
    run_id: str,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Give up after this many seconds.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Block until the run completes or fails, then print its result."""
    wanted = parse_run_id(run_id)
    settings = load_settings()
    view = run_async(follow(settings, wanted, timeout), settings)
    print_result(view or RunView(wanted), as_json)
    raise typer.Exit(exit_code(view))


async def _catch_up(settings: CliSettings) -> dict[UUID, RunView]:
    async with RunLog(settings) as log:
        return await log.catch_up()


def _listed(view: RunView) -> dict[str, Any]:
    return {
        **result_json(view),
        "created_at": view.created_at.isoformat() if view.created_at else None,
        "source": view.source,
        "attempt": view.attempt,
        "last_phase": view.last_phase,
    }
