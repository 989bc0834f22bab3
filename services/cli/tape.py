"""`loan-engine tape push|generate`: a producer's push (SPEC §2) and synthetic tapes."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any

import typer

from contracts.codec import encode
from contracts.ids import tape_run_id
from contracts.loans import RunParams
from contracts.run_fold import DONE
from contracts.tapes import TapeEnd, TapeRow
from contracts.topics import LOAN_TAPES
from services.cli.client import CliSettings, RunLog, RunView, load_settings
from services.cli.options import (
    IrrTargetOption,
    JsonOption,
    PdateOption,
    SalesTeamOption,
    WaitOption,
)
from services.cli.pipeline import (
    exit_code,
    follow_progress,
    print_result,
    progress,
    run_async,
    run_params,
    usage_error,
)
from services.common.kafka import KafkaPublisher
from services.common.storage import InvalidPath, safe_key
from services.ingest.domain import normalise_header_name
from services.ingest.errors import TapeError
from services.ingest.readers import is_tape_file, read_rows
from services.ingest.tapegen import generate_tape

app = typer.Typer(help="Producer tapes: push a file to loan-tapes.v1, or generate one.")

IN_FLIGHT = 1000
"""Rows sent before waiting for the broker's acknowledgements (bounded memory, fast pushes)."""


class UnpushableTape(ValueError):
    """A file the producer contract cannot carry faithfully."""


def unnamed_key(number: int) -> str:
    """The field name of a cell with no usable header: `_`, `__`, ... normalise to no column.

    Such a cell is never a loan field, but its content still makes its row a row (SPEC §3.1: a
    row is skipped only when every cell, beyond the header too, is empty).
    """
    return "_" * number


def named_columns(header: Sequence[str]) -> list[tuple[int, str]]:
    """(position, original name) of the header cells that name a column; raises UnpushableTape
    when two are spelled identically (a producer's fields are a map and cannot hold both)."""
    named: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, name in enumerate(header):
        if not normalise_header_name(name):
            continue
        if name in seen:
            raise UnpushableTape(f"the header has two columns named {name!r}")
        seen.add(name)
        named.append((index, name))
    return named


def tape_rows(rows: Iterable[Sequence[str]]) -> Iterator[tuple[int, dict[str, str]]]:
    """A file's rows (header first) as producer rows: numbered from 1, blank rows skipped."""
    iterator = iter(rows)
    header = next(iterator, None)
    if header is None:
        return
    named = named_columns(header)
    positions = {index for index, _ in named}
    number = 0
    for cells in iterator:
        if all(not cell or cell.isspace() for cell in cells):
            continue
        number += 1
        fields = {name: cells[index] if index < len(cells) else "" for index, name in named}
        others = [
            cell
            for index, cell in enumerate(cells)
            if index not in positions and cell and not cell.isspace()
        ]
        for count, cell in enumerate(others, start=1):
            fields[unnamed_key(count)] = cell
        yield number, fields


def checked_tape_id(tape_id: str) -> str:
    """A tape id usable as the file name `{tape_id}.csv`; exit 2 otherwise."""
    try:
        usable = bool(tape_id) and safe_key(f"{tape_id}.csv") == f"{tape_id}.csv"
    except InvalidPath:
        usable = False
    if not usable:
        raise usage_error(f"tape id {tape_id!r} cannot name a file")
    return tape_id


def count_rows(path: Path) -> int:
    """Read the whole file once, so a file that breaks half-way is refused before any row is
    pushed (a tape without its end marker would stay open on the topic)."""
    with path.open("rb") as stream, closing(read_rows(path.name, stream)) as rows:
        return sum(1 for _ in tape_rows(rows))


async def push(settings: CliSettings, path: Path, tape_id: str, params: RunParams) -> int:
    """Publish every row of the file, then the end marker; the number of rows pushed."""
    sent = 0
    pending: deque[asyncio.Future[Any]] = deque()
    topic = settings.topic(LOAN_TAPES)
    key = tape_id.encode()
    async with KafkaPublisher(settings) as publisher:
        with path.open("rb") as stream, closing(read_rows(path.name, stream)) as rows:
            for number, fields in tape_rows(rows):
                message = TapeRow(tape_id=tape_id, row=number, fields=fields)
                pending.append(await publisher.producer.send(topic, encode(message), key))
                sent = number
                if len(pending) >= IN_FLIGHT:
                    await pending.popleft()
        while pending:
            await pending.popleft()
        end = TapeEnd(
            tape_id=tape_id,
            rows=sent,
            pdate=params.pdate,
            irr_target=params.irr_target,
            sales_team_id=params.sales_team_id,
        )
        await publisher.publish(LOAN_TAPES, tape_id, end, {"event-type": "tape.end"})
    return sent


async def push_and_follow(
    settings: CliSettings, path: Path, tape_id: str, params: RunParams, timeout: float
) -> RunView | None:
    """Push, then follow the tape's run. A tape already completed is the same run (its result
    stands); otherwise only what the log says after the push counts (a new attempt)."""
    run_id = tape_run_id(tape_id)
    async with RunLog(settings) as log:
        before = (await log.catch_up()).get(run_id)
        await push(settings, path, tape_id, params)
        if before is not None and before.status in DONE:
            return before
        log.runs.pop(run_id, None)
        log.on_event = follow_progress(run_id)
        return await log.wait(run_id, timeout, after_catch_up=False)


@app.command("push")
def push_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help=".csv or .xlsx")
    ],
    tape_id: Annotated[
        str | None, typer.Option("--tape-id", help="Defaults to the file's stem.")
    ] = None,
    pdate: PdateOption = None,
    irr_target: IrrTargetOption = None,
    sales_team_id: SalesTeamOption = None,
    wait: WaitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Publish a tape file as producer rows plus the end marker; its run id is known up front."""
    if not is_tape_file(file.name):
        raise usage_error(f"{file} is not a .csv or .xlsx file")
    settings = load_settings()
    params = run_params(settings, pdate, irr_target, sales_team_id)
    chosen = checked_tape_id(tape_id if tape_id is not None else file.stem)
    run_id = tape_run_id(chosen)
    try:
        rows = count_rows(file)
    except (TapeError, UnpushableTape) as error:
        raise usage_error(f"{file.name}: {error}") from None
    if wait is None:
        run_async(push(settings, file, chosen, params), settings)
        progress(f"pushed {rows} rows of tape {chosen!r}: run {run_id}")
        print_result(RunView(run_id), as_json)
        return
    view = run_async(push_and_follow(settings, file, chosen, params, wait), settings)
    print_result(view or RunView(run_id), as_json)
    raise typer.Exit(exit_code(view))


@app.command("generate")
def generate(
    loans: Annotated[int, typer.Option("--loans", min=1, help="How many loans.")],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same tape.")],
    out: Annotated[Path, typer.Option("--out", help="The tape to write: .csv or .xlsx.")],
    bad_share: Annotated[
        float, typer.Option("--bad-share", min=0.0, max=1.0, help="Share of bad rows.")
    ] = 0.05,
    as_json: JsonOption = False,
) -> None:
    """Write a realistic synthetic tape with a tunable share of bad rows."""
    if out.suffix.lower() not in (".csv", ".xlsx"):
        raise usage_error("--out must end in .csv or .xlsx")
    out.parent.mkdir(parents=True, exist_ok=True)
    generate_tape(out, loans, seed, bad_share)
    path = str(out.resolve())
    progress(f"wrote {loans} loans to {path}")
    typer.echo(json.dumps({"path": path, "loans": loans}) if as_json else path)
