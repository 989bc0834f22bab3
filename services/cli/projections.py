"""`loan-engine projections rebuild | checksum`: replay the log into the read models (SPEC §6)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from services.cli.options import JsonOption
from services.gateway.projector.maintenance import checksum, rebuild
from services.gateway.settings import GatewaySettings

app = typer.Typer(help="The gateway's read models: rebuild them from the log, digest them.")


@app.command("rebuild")
def rebuild_command(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the replay.")] = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Truncate the read models and replay every topic into them; wait until caught up."""
    typer.echo("rebuilding the read models from the log...", err=True)
    try:
        result = asyncio.run(rebuild(GatewaySettings(), timeout=timeout))
    except TimeoutError as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from error
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
    result = asyncio.run(checksum(GatewaySettings()))
    payload = {"checksum": result.digest, "tables": result.tables}
    typer.echo(json.dumps(payload) if as_json else result.digest)
