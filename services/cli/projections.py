"""`loan-engine projections rebuild | checksum`: replay the log into the read models (SPEC §6)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from services.cli import reach
from services.cli.admin import gateway_settings
from services.cli.options import JsonOption

app = typer.Typer(help="The gateway's read models: rebuild them from the log, digest them.")


class ReplayBehind(Exception):
    """The replay had not caught up with the log when the timeout passed."""


@app.command("rebuild")
def rebuild_command(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the replay.")] = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Truncate the read models and replay every topic into them; wait until caught up."""
    from services.gateway.projector.maintenance import RebuildResult, rebuild

    settings = gateway_settings()
    typer.echo("rebuilding the read models from the log...", err=True)

    async def replay() -> RebuildResult:
        try:
            return await rebuild(settings, timeout=timeout)
        except TimeoutError as error:
            raise ReplayBehind(str(error)) from None

    try:
        result = reach.guarded(
            lambda: asyncio.run(replay()),
            bootstrap_servers=settings.kafka_bootstrap_servers,
            database_url=settings.database_dsn,
        )
    except ReplayBehind as error:
        reach.fail(f"the replay did not catch up within {timeout:g} s ({error})")
    payload = {
        "generation": result.generation,
        "replayed_by": result.replayed_by,
        "seconds": round(result.seconds, 3),
    }
    text = f"rebuilt (generation {result.generation}) in {result.seconds:.1f}s"
    typer.echo(json.dumps(payload) if as_json else text)


@app.command("checksum")
def checksum_command(as_json: JsonOption = False) -> None:
    """A digest of every read model; two rebuilds of the same log agree on it."""
    from services.gateway.projector.maintenance import checksum

    settings = gateway_settings()
    result = reach.guarded(
        lambda: asyncio.run(checksum(settings)),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        database_url=settings.database_dsn,
    )
    payload = {"checksum": result.digest, "tables": result.tables}
    typer.echo(json.dumps(payload) if as_json else result.digest)
