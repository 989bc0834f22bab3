"""Reconciling a completed run of N loans (default 200,000): archive, read models and reports.

    .venv/bin/python benchmarks/reconciliation.py --loans 200000

A generated tape goes through the pure chain (readers -> Normaliser -> rules -> pricing ->
disposition -> ReportWriter) in this process; its dispositioned batches are projected into a
database of its own (the projector's planner and writer), its tape archived and its reports
stored in a local storage of its own. Then the gateway's reconciliation runs over it, as the
projector process's job or `POST /runs/{id}/reconciliation` would, and the time it takes is
printed with the counts (every loan must match) and the process's RSS before it and at its peak.
Database and work folder are removed after. Numbers from a shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import psutil
from sqlalchemy.ext.asyncio import async_sessionmaker

from contracts.codec import encode
from contracts.ids import batch_key, event_id
from contracts.loans import DispositionedBatch, LoanDispositioned, RunParams
from contracts.runs import REPORT_KEYS
from services.cli.client import load_settings
from services.cli.stack import databases
from services.common.kafka import batch_headers
from services.common.storage import LocalStorage
from services.gateway.db import connect, make_engine, migrate
from services.gateway.projector.plan import Record, plan
from services.gateway.projector.writer import write_chunk
from services.gateway.reconciliation.service import reconcile
from services.gateway.settings import GatewaySettings
from services.ingest.domain import Normaliser
from services.ingest.duplicates import SqliteDuplicateIndex
from services.ingest.readers import read_rows
from services.ingest.tapegen import generate_tape
from services.pricing.domain import price
from services.reporting.domain import disposition
from services.reporting.reports import ReportWriter
from services.rules.domain import evaluate, load_rule_set

IRR_TARGET = Decimal("8.05")
BATCH = 500


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def process_and_project(
    settings: GatewaySettings, tape: Path, run_id: Any, reports: Path
) -> int:
    """The pure chain over the tape, its reports written to `reports/` and its loans projected
    batch by batch as the projector writes them; the number of loans."""
    rule_set = load_rule_set()
    now = datetime.now(UTC)
    params = RunParams(irr_target=IRR_TARGET, pdate=now.date())
    conn = await connect(settings)
    pending: list[LoanDispositioned] = []
    batches = loans = 0

    async def flush() -> None:
        nonlocal batches
        batch = DispositionedBatch(
            run_id=run_id, batch_seq=batches, params=params, events=tuple(pending)
        )
        headers = tuple((k, v.encode()) for k, v in batch_headers(batch).items())
        key = batch_key(run_id, batches).encode()
        record = Record("loans.dispositioned.v1", 0, batches, key, encode(batch), headers, 0)
        await write_chunk(conn, plan([record]), {}, 0)
        batches += 1
        pending.clear()

    try:
        with ExitStack() as stack, SqliteDuplicateIndex() as duplicates:
            sinks = {
                key: stack.enter_context((reports / f"{key}.csv").open("wb")) for key in REPORT_KEYS
            }
            writer = ReportWriter(sinks)
            stream = stack.enter_context(tape.open("rb"))
            rows = read_rows(tape.name, stream)
            for record in Normaliser(run_id, duplicates).file(tape.name, rows):
                evaluation = evaluate(record, rule_set)
                pricing = price(evaluation.exceptions, record.fields.note_rate, IRR_TARGET)
                event = LoanDispositioned(
                    event_id=event_id("loan.dispositioned", run_id, record.loan_id),
                    run_id=run_id,
                    occurred_at=now,
                    producer="benchmark",
                    loan=record,
                    exceptions=evaluation.exceptions,
                    quality=evaluation.quality,
                    rule_set_version=rule_set.version,
                    pricing=pricing,
                    disposition=disposition(evaluation.exceptions, pricing),
                )
                writer.add(event)
                pending.append(event)
                loans += 1
                if len(pending) == BATCH:
                    await flush()
            writer.finish()
        if pending:
            await flush()
        for key in REPORT_KEYS:
            await conn.execute(
                "INSERT INTO gateway.report_files (run_id, key, storage_key, uri, sha256, size, "
                "rows, written_at) VALUES ($1, $2, $3, $3, '', 0, 0, now())",
                run_id,
                key,
                f"outputs/{run_id}/{key}.csv",
            )
    finally:
        await conn.close()
    return loans


class PeakRss:
    """This process's RSS, sampled every 20 ms on a thread of its own (the loop may be busy)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def timed_reconcile(settings: GatewaySettings, storage: LocalStorage, run_id: Any) -> dict:
    engine = make_engine(settings)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            with PeakRss() as rss:
                started = time.perf_counter()
                summary = await reconcile(session, storage, run_id)
                await session.commit()
                seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return {
        "seconds": round(seconds, 2),
        "rss_mb_before": rss.start // 2**20,
        "peak_rss_mb": rss.peak // 2**20,
        **{k: v for k, v in summary.items() if k != "reconciled_at"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    base = load_settings()
    work = Path(tempfile.mkdtemp(prefix="loan-engine-reconcile-"))
    database = f"bench_rec_{uuid4().hex[:8]}"
    database_url = asyncio.run(databases.create_database(base.database_dsn, database))
    try:
        settings = GatewaySettings(database_url=database_url, storage_root=work / "storage")
        asyncio.run(migrate(settings))
        run_id = uuid4()
        tape = work / "tape.csv"
        progress(f"generating {args.loans} loans")
        generate_tape(tape, args.loans, args.seed)
        storage = LocalStorage(work / "storage")
        reports = work / "reports"
        reports.mkdir()
        progress("processing the tape (pure chain), writing its reports, projecting its loans")
        asyncio.run(process_and_project(settings, tape, run_id, reports))
        asyncio.run(storage.put_file(f"archive/{run_id}/input/tape.csv", tape))
        for key in REPORT_KEYS:
            asyncio.run(storage.put_file(f"outputs/{run_id}/{key}.csv", reports / f"{key}.csv"))
        progress("reconciling")
        result = asyncio.run(timed_reconcile(settings, storage, run_id))
        result["loans_per_second"] = (
            round(args.loans / result["seconds"]) if result["seconds"] else None
        )
        print(json.dumps({"loans": args.loans, "reconciliation": result}, indent=2, default=str))
    finally:
        asyncio.run(databases.drop_database(base.database_dsn, database))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
