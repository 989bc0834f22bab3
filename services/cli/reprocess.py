"""`loan-engine runs reprocess RUN_ID [...]` and `runs diff RUN_ID` (SPEC §7).

A reprocess is resolved against the gateway's read models (the loans to keep, the corrections to
apply) exactly as `POST /runs/{id}/reprocess` does, and published to `runs.v1`; `--wait` follows
the child run in the log like `run --wait`. Like the API's, the request is audited on `audit.v1`.

The gateway's modules (and SQLAlchemy) are imported by these two commands only: every other
command, `loan-engine run` among them, starts without them (about 40 MB less memory).
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, TypeVar
from uuid import UUID

import typer
from pydantic import ValidationError

from contracts.audit import Outcome
from services.cli import reach
from services.cli.client import RunView, load_settings, result_json
from services.cli.options import IrrTargetOption, JsonOption, PdateOption, WaitOption
from services.cli.pipeline import (
    exit_code,
    follow,
    parse_pdate,
    parse_run_id,
    progress,
    run_async,
    runs_app,
    usage_error,
)
from services.common.kafka import KafkaPublisher

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from services.gateway.errors import GatewayError
    from services.gateway.identity.principal import Principal
    from services.gateway.settings import GatewaySettings

T = TypeVar("T")
OPERATOR_ID = UUID(int=0)


def operator() -> Principal:
    """The CLI acts as an operator who sees every team's runs."""
    from services.gateway.identity.principal import Principal

    return Principal(OPERATOR_ID, f"cli:{getpass.getuser()}", "admin", None)


def _gateway_settings() -> GatewaySettings:
    """The running stack's database unless the environment names another (as `admin` does)."""
    from services.gateway.settings import GatewaySettings

    return GatewaySettings(_env_file=reach.env_files())  # type: ignore[call-arg]


def _in_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in a session; an unreachable broker or database is one line and exit 1."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from services.gateway.db import make_engine

    settings = _gateway_settings()

    async def main() -> T:
        engine = make_engine(settings)
        try:
            async with async_sessionmaker(engine, expire_on_commit=False)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return reach.guarded(
        lambda: asyncio.run(main()),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        database_url=settings.database_dsn,
    )


def _failed(error: GatewayError) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(2 if error.status_code in (400, 409, 422) else 1)


def _audit(target: dict[str, str], outcome: Outcome) -> None:
    """Publish the command's audit event (action `reprocess`, as the API names it); the request
    is published already, so a silent broker costs a warning only."""
    from services.gateway.audit.recorder import record_cli_action

    try:
        asyncio.run(record_cli_action(_gateway_settings(), "reprocess", target, outcome))
    except Exception as error:
        typer.secho(f"warning: audit event not published ({type(error).__name__})", err=True)


def reprocess(
    run_id: str,
    irr_target: IrrTargetOption = None,
    pdate: PdateOption = None,
    rule_set_version: Annotated[
        str | None, typer.Option("--rule-set-version", help="Evaluate with this rule set.")
    ] = None,
    apply_corrections: Annotated[
        bool, typer.Option("--apply-corrections", help="Apply the loans' recorded corrections.")
    ] = False,
    loan_ids: Annotated[
        list[str] | None,
        typer.Option("--loan-id", help="Only this loan (repeat for more): a partial run."),
    ] = None,
    wait: WaitOption = None,
    as_json: JsonOption = False,
) -> None:
    """A child run over RUN_ID's archived inputs (what-if: new IRR target or rule set)."""
    from services.gateway.errors import GatewayError
    from services.gateway.runs.schemas import ReprocessRequest
    from services.gateway.runs.service import reprocess_run

    parent = parse_run_id(run_id)
    try:
        body = ReprocessRequest(
            irr_target=Decimal(irr_target) if irr_target is not None else None,
            pdate=parse_pdate(pdate) if pdate is not None else None,
            rule_set_version=rule_set_version,
            apply_corrections=apply_corrections,
            loan_ids=[parse_run_id(text) for text in loan_ids] if loan_ids else None,
        )
    except (ValidationError, ArithmeticError) as error:
        raise usage_error(f"bad reprocess options: {error}") from None
    settings = load_settings()

    async def request(session: AsyncSession) -> UUID:
        async with KafkaPublisher(settings) as publisher:
            state = await reprocess_run(session, publisher, operator(), parent, body)
        return state.run_id

    target = {"run_id": str(parent)}
    try:
        child = _in_session(request)
    except GatewayError as error:
        _audit(target, "denied" if error.status_code in (401, 403) else "failed")
        raise _failed(error) from None
    _audit({**target, "child_run_id": str(child)}, "success")
    progress(f"run {child} requested: a reprocess of {parent}")
    view = (
        RunView(child)
        if wait is None
        else run_async(follow(settings, child, wait, announced=True), settings)
    )
    result = {**result_json(view or RunView(child)), "parent_run_id": str(parent)}
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"run {child} (reprocess of {parent}): {result['status']}")
    if wait is not None:
        raise typer.Exit(exit_code(view))


def run_diff(
    run_id: str,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Changes to list.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """What a reprocess changed against its parent: counts by transition and the changed loans."""
    from services.gateway.errors import GatewayError
    from services.gateway.reprocess import service as reprocess_service
    from services.gateway.runs.service import visible_run

    child = parse_run_id(run_id)

    async def work(session: AsyncSession) -> dict:
        state = await visible_run(session, operator(), child)
        found = await reprocess_service.run_diff(session, state, 0, limit)
        return found.model_dump(mode="json", exclude={"skip", "limit"})

    try:
        found = _in_session(work)
    except GatewayError as error:
        raise _failed(error) from None
    if as_json:
        typer.echo(json.dumps(found))
        return
    typer.echo(f"run {found['run_id']} against {found['parent_run_id']}")
    for key, count in found["counts"].items():
        typer.echo(f"  {key}: {count}")
    for change in found["changes"]:
        typer.echo(
            f"  {change['seller_loan_number']}: {change['disposition_before']} -> "
            f"{change['disposition_after']}  +{change['exceptions_added']} "
            f"-{change['exceptions_removed']}  {change['price_before']} -> {change['price_after']}"
        )


def register() -> None:
    """Add `reprocess` and `diff` to the `runs` command group."""
    runs_app.command("reprocess")(reprocess)
    runs_app.command("diff")(run_diff)
