"""CPU per loan of the pipeline's two ends, in process: `.venv/bin/python benchmarks/ends.py`.

Ingest's file path: a generated CSV tape read (`read_rows`), normalised against the on-disk
duplicate index (`Normaliser`, `SqliteDuplicateIndex`), cut into batches and encoded as the
broker would send them (`LoanBatchSender`, `encode`, `batch_headers`). Reporting's `on_priced`
without its servers: decode a priced batch, disposition it, render its report rows, build the
records it COPYs and encode the dispositioned batch. Each stage's CPU seconds
(`time.process_time`, best of `--repeat`, the cyclic collector paused) are printed as
microseconds per loan. Kafka and PostgreSQL are left out: this times our own code. The machine
is shared, so the figures are indicative; compare before and after in one sitting.

`--stored` runs reporting's real use case instead, against PostgreSQL (a fresh database on
DATABASE_URL's server, dropped afterwards): `ReportingService.on_priced` for every batch (decoded
as its consumer decodes it), then the tape-ingested event that completes the run and writes its
four reports to local storage. It prints the CPU microseconds per loan of this process and of the
PostgreSQL backends serving it (their /proc/<pid>/stat, so the server must run on this machine).
The dispositioned batches are encoded as the publisher would, or sent to a topic of their own on
KAFKA_BOOTSTRAP_SERVERS with `--kafka` (the broker's own CPU is not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from benchmarks.cpu import cpu_per_loan, priced_events
from contracts import wire
from contracts.codec import decode, encode
from contracts.ids import event_id
from contracts.runs import TapeIngested
from contracts.topics import Topic
from services.cli.stack import databases, topics
from services.cli.stack.urls import asyncpg_dsn
from services.common.consumer import gc_paused, settle_heap
from services.common.db import make_engine, upgrade
from services.common.kafka import KafkaPublisher, batch_headers
from services.common.storage import LocalStorage
from services.ingest.batches import LoanBatchSender
from services.ingest.domain import Normaliser
from services.ingest.duplicates import SqliteDuplicateIndex
from services.ingest.readers import ReadLimits, read_rows
from services.ingest.service import file_records
from services.ingest.tapegen import generate_tape
from services.reporting.reports import render_all
from services.reporting.repository import exceptions_json
from services.reporting.service import ReportingService, dispositioned_batch
from services.reporting.settings import ReportingSettings

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
    """Reporting's per-batch CPU: decode, disposition, render, COPY records, encode."""
    now = datetime.now(UTC)
    for data in batches:
        batch = decode(data, wire.PricedBatch)
        output = dispositioned_batch(batch, now)
        rendered = render_all(output.events)
        [
            (batch.run_id, loan.seq, loan.disposition, loan.text, exceptions_json(loan))
            for loan in rendered
        ]
        encode(output)
        batch_headers(output)


class EncodingPublisher:
    """Reporting's publisher without a broker: encodes what it is given, as Kafka's would."""

    async def publish(self, topic: Topic, key: str, event: Any, headers: Any = None) -> None:
        encode(event)
        del topic, key, headers  # where it would go costs the broker's client, not us

    async def publish_batch(self, topic: Topic, batch: Any, headers: Any = None) -> None:
        encode(batch)
        batch_headers(batch)
        del topic, headers


async def backend_cpu(monitor: asyncpg.Connection, database: str) -> float:
    """CPU seconds so far of the PostgreSQL backends connected to `database` but `monitor`'s."""
    pids = await monitor.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    total = 0
    for (pid,) in pids:
        with Path(f"/proc/{pid}/stat").open() as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def fresh_database(server_url: str) -> Iterator[tuple[str, str]]:
    """A database of this benchmark's own on the server (dropped at the end): name and URL."""
    name = f"bench_ends_{uuid4().hex[:12]}"
    url = asyncio.run(databases.create_database(server_url, name))
    try:
        yield name, url
    finally:
        asyncio.run(databases.drop_database(server_url, name))


def tape_ingested(run_id: UUID, total: int) -> TapeIngested:
    """The event that gives reporting the run's final count (and so completes it)."""
    return TapeIngested(
        event_id=event_id("run.tape_ingested", run_id),
        run_id=run_id,
        occurred_at=datetime.now(UTC),
        producer="ingest",
        total_loans=total,
        total_balance=Decimal(0),
        batch_count=0,
        files=("tape.csv",),
        duplicates=0,
    )


async def stored_run(
    batches: list[bytes], loans: int, database: str, url: str, kafka: bool
) -> dict[str, float]:
    """Reporting's use case over every batch against PostgreSQL, then the run's completion."""
    settings = ReportingSettings(database_url=url, topic_prefix=f"bench-{uuid4().hex[:12]}.")
    engine = make_engine(settings, pool_size=settings.db_pool_size)
    await upgrade(engine, "reporting")
    monitor = await asyncpg.connect(asyncpg_dsn(url))
    names: list[str] = []
    publisher: Any = EncodingPublisher()
    if kafka:
        names = await topics.ensure_topics(settings.kafka_bootstrap_servers, settings.topic_prefix)
        publisher = KafkaPublisher(settings)
        await publisher.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            storage = LocalStorage(Path(folder))
            service = ReportingService(
                settings, engine, storage, publisher, lambda: datetime.now(UTC)
            )
            run_id = decode(batches[0], wire.PricedBatch).run_id
            server_before = await backend_cpu(monitor, database)
            settle_heap()  # as the worker does once started
            started, wall = time.process_time(), time.perf_counter()
            for data in batches:
                with gc_paused():  # as its consumer decodes
                    batch = decode(data, wire.PricedBatch)
                await service.on_priced(batch)
            stored = time.process_time()
            server_stored = await backend_cpu(monitor, database)
            await service.on_tape_ingested(tape_ingested(run_id, loans))
            finished, wall = time.process_time(), time.perf_counter() - wall
            server_after = await backend_cpu(monitor, database)
    finally:
        if kafka:
            await publisher.stop()
            await topics.delete_topics(settings.kafka_bootstrap_servers, names)
        await monitor.close()
        await engine.dispose()
    micro = 1e6 / loans
    return {
        "process_on_priced": round((stored - started) * micro, 2),
        "process_completion": round((finished - stored) * micro, 2),
        "postgres_on_priced": round((server_stored - server_before) * micro, 2),
        "postgres_completion": round((server_after - server_stored) * micro, 2),
        "process_total": round((finished - started) * micro, 2),
        "postgres_total": round((server_after - server_before) * micro, 2),
        "wall_seconds": round(wall, 2),
    }


def stored(batches: list[bytes], loans: int, kafka: bool) -> dict[str, float]:
    """`stored_run` on a fresh database of the server DATABASE_URL names."""
    server_url = os.environ.get(
        "DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:55432/postgres"
    )
    with fresh_database(server_url) as (name, url):
        return asyncio.run(stored_run(batches, loans, name, url, kafka))


def main() -> None:
    """Time each stage and print the figures as JSON (or a profile with --profile)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--bad-share", type=float, default=0.05)
    parser.add_argument("--profile", choices=("ingest", "reporting"))
    parser.add_argument(
        "--stored", action="store_true", help="reporting against PostgreSQL, with its CPU"
    )
    parser.add_argument("--kafka", action="store_true", help="with --stored: publish to Kafka")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tape = Path(folder) / "tape.csv"
        generate_tape(tape, args.loans, seed=11, bad_share=args.bad_share)
        batches = priced_batches(tape)
        if args.stored:
            runs = [stored(batches, args.loans, args.kafka) for _ in range(args.repeat)]
            best = {key: min(run[key] for run in runs) for key in runs[0]}
            print(json.dumps({"loans": args.loans, "best_of": args.repeat, **best}, indent=2))
            return
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
