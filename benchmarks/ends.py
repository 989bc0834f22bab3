"""CPU per loan of the pipeline's two ends, in process: `.venv/bin/python benchmarks/ends.py`.

Ingest's file path: a generated CSV tape read (`read_rows`), normalised against the on-disk
duplicate index (`Normaliser`, `SqliteDuplicateIndex`), cut into batches and encoded as the
broker would send them (`LoanBatchSender`, `encode`, `batch_headers`). Reporting's `on_priced`
without its servers: decode a priced batch, disposition it, render its report rows, build the
INSERT's parameters and encode the dispositioned batch. Each stage's CPU seconds
(`time.process_time`, best of `--repeat`, the cyclic collector paused) are printed as
microseconds per loan. Kafka and PostgreSQL are left out: this times our own code. The machine
is shared, so the figures are indicative; compare before and after in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from benchmarks.cpu import cpu_per_loan, priced_events
from contracts import wire
from contracts.codec import decode, dumps, encode
from services.common.kafka import batch_headers
from services.ingest.batches import LoanBatchSender
from services.ingest.domain import Normaliser
from services.ingest.duplicates import SqliteDuplicateIndex
from services.ingest.readers import ReadLimits, read_rows
from services.ingest.service import file_records
from services.ingest.tapegen import generate_tape
from services.reporting.reports import render_all
from services.reporting.service import dispositioned_batch

BATCH = 500


def read_only(tape: Path) -> int:
    """Every row of the tape as cell texts."""
    with tape.open("rb") as stream:
        return sum(1 for _ in read_rows(tape.name, stream))


def normalise(tape: Path) -> list[wire.LoanRecord]:
    """The tape's loan records, duplicates checked on disk."""
    with SqliteDuplicateIndex() as duplicates:
        normaliser = Normaliser(uuid4(), duplicates)
        return list(file_records(normaliser, tape.name, tape, ReadLimits()))


def ingest(tape: Path) -> int:
    """Read, normalise, batch and encode the tape as ingest does; the bytes encoded."""
    sent = 0

    async def send(batch: wire.IngestedBatch) -> asyncio.Future[Any]:
        nonlocal sent
        sent += len(encode(batch))
        batch_headers(batch)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def run() -> None:
        run_id = uuid4()
        sender = LoanBatchSender(
            send_batch=send,
            run_id=run_id,
            params=wire.RunParams(pdate=date(2026, 1, 1)),
            clock=lambda: datetime.now(UTC),
            batch_size=BATCH,
            max_batch_bytes=800_000,
            publish_window=8,
        )
        with SqliteDuplicateIndex() as duplicates:
            normaliser = Normaliser(run_id, duplicates)
            chunk: list[wire.LoanRecord] = []
            for record in file_records(normaliser, tape.name, tape, ReadLimits()):
                chunk.append(record)
                if len(chunk) == BATCH:
                    await sender.add(chunk)
                    chunk = []
            await sender.add(chunk)
            await sender.finish()

    asyncio.run(run())
    return sent


def priced_batches(tape: Path) -> list[bytes]:
    """The tape's loans as pricing publishes them: encoded priced batches."""
    now = datetime.now(UTC)
    records = normalise(tape)
    run_id = records[0].loan_id  # any UUID: the batches only need one run
    events = priced_events(records, run_id, now)
    params = wire.RunParams(pdate=now.date())
    return [
        encode(
            wire.PricedBatch(
                run_id=run_id,
                batch_seq=start // BATCH,
                params=params,
                events=tuple(events[start : start + BATCH]),
            )
        )
        for start in range(0, len(events), BATCH)
    ]


def on_priced(batches: list[bytes]) -> None:
    """Reporting's per-batch CPU: decode, disposition, render, INSERT parameters, encode."""
    now = datetime.now(UTC)
    for data in batches:
        output = dispositioned_batch(decode(data, wire.PricedBatch), now)
        rendered = render_all(output.events)
        [dumps(loan.exceptions).decode() if loan.exceptions else None for loan in rendered]
        encode(output)
        batch_headers(output)


def main() -> None:
    """Time each stage and print the figures as JSON (or a profile with --profile)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bad-share", type=float, default=0.05)
    parser.add_argument("--profile", choices=("ingest", "reporting"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tape = Path(folder) / "tape.csv"
        generate_tape(tape, args.loans, seed=11, bad_share=args.bad_share)
        batches = priced_batches(tape)
        if args.profile:
            profiler = cProfile.Profile()
            if args.profile == "ingest":
                profiler.runcall(ingest, tape)
            else:
                profiler.runcall(on_priced, batches)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return
        stages = {
            "ingest_read_rows": lambda: read_only(tape),
            "ingest_normalise": lambda: normalise(tape),
            "ingest_all": lambda: ingest(tape),
            "reporting_on_priced": lambda: on_priced(batches),
        }
        result = {
            "loans": args.loans,
            "us_per_loan": {
                name: cpu_per_loan(stage, args.loans, args.repeat) for name, stage in stages.items()
            },
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
