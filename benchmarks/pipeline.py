"""The million-loan benchmark: a generated tape through the real services, as the stack runs them.

    .venv/bin/python benchmarks/pipeline.py --loans 1000000 [--flamegraphs DIR]

Ingest, rules, pricing, reporting and the gateway's projector run as separate processes against
the broker and database named by KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL (or the stack's
`.stack/env`), under a topic prefix and a database of their own, removed afterwards. It reports the
wall time from the run request to run completion and to projections caught up (every loan in the
read models), loans/s, each process's peak RSS (psutil, sampled) and CPU seconds, and the time a
plain single-process Python loop takes over the same tape with the same pure chain (readers ->
Normaliser -> rules -> pricing -> disposition -> ReportWriter), the ratio of the two rates, and
whether both runs' reports agree. `--scale-out SECONDS` starts a second instance of rules and of
pricing that many seconds after the run request (they join the consumer groups mid-run): compare
its wall time with a run without, and its digests with the plain loop's. `--flamegraphs DIR`
records each worker with py-spy during the run (DIR/<service>.svg; py-spy needs ptrace rights,
as root or with CAP_SYS_PTRACE).


`--scoring-overhead` measures what credit scoring (SPEC §8) adds, in one sitting: the same tape
through the pipeline without the scoring worker, then with it (a model trained at its start on a
`--scoring-samples` history, in a state folder of its own). End to end is from the run request
until every loan is in the read models: projected without scoring; projected and scored with it.

    .venv/bin/python benchmarks/pipeline.py --loans 200000 --skip-baseline --scoring-overhead
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import psutil

from contracts.ids import event_id
from contracts.loans import RunParams
from contracts.numbers import DEFAULT_IRR_TARGET
from contracts.runs import REPORT_KEYS
from contracts.wire import LoanDispositioned
from services.cli.client import CliSettings, RunLog, load_settings
from services.cli.pipeline import request
from services.cli.stack import databases, ports, supervisor, topics
from services.cli.stack.services import answers
from services.common.storage import LocalStorage
from services.gateway.db import connect, migrate
from services.gateway.settings import GatewaySettings
from services.ingest.domain import Normaliser
from services.ingest.duplicates import SqliteDuplicateIndex
from services.ingest.readers import read_rows
from services.ingest.tapegen import generate_tape
from services.pricing.domain import price
from services.reporting.domain import disposition
from services.reporting.reports import ReportWriter
from services.rules.domain import evaluate, load_rule_set

PROJECT = Path(__file__).resolve().parents[1]
WORKERS = {
    "ingest": "services.ingest.main",
    "rules": "services.rules.main",
    "pricing": "services.pricing.main",
    "reporting": "services.reporting.main",
    "projector": "services.gateway.projector.main",
}
# The projector reads the gateway's settings (env prefix GATEWAY_).
SCORING = {"scoring": "services.scoring.main"}
PORT_VARIABLES = {"projector": "GATEWAY_PROJECTOR_HTTP_PORT"}
# Scoring trains its first model before it answers ready: minutes on a loaded machine.
READY_SECONDS = {"scoring": 900.0}
PROJECTION_POLL_SECONDS = 0.5
SCALED_OUT = ("rules", "pricing")
IRR_TARGET: Decimal = DEFAULT_IRR_TARGET


def progress(message: str) -> None:
    """Progress to stderr; the results go to stdout."""
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class PeakRss:
    """Samples the resident memory of processes (and their children) in a background thread."""

    pids: dict[str, int]
    interval: float = 0.2
    peaks: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        processes = {name: psutil.Process(pid) for name, pid in self.pids.items()}
        while not self._stop.wait(self.interval):
            for name, process in processes.items():
                try:
                    family = [process, *process.children(recursive=True)]
                    rss = sum(member.memory_info().rss for member in family)
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                self.peaks[name] = max(self.peaks.get(name, 0), rss)
                self.cpu_seconds[name] = times.user + times.system


def digests(paths: dict[str, Path]) -> dict[str, str]:
    """sha256 of each report file."""
    return {key: hashlib.sha256(path.read_bytes()).hexdigest() for key, path in paths.items()}


def plain_loop(tape: Path, out_dir: Path) -> tuple[float, int, dict[str, str]]:
    """The same pure chain in one process, one loan at a time: seconds, loans, report digests."""
    started = time.perf_counter()
    rule_set = load_rule_set()
    run_id = uuid4()
    now = datetime.now(UTC)
    paths = {key: out_dir / f"{key}.csv" for key in REPORT_KEYS}
    with ExitStack() as stack, SqliteDuplicateIndex() as duplicates:
        sinks = {key: stack.enter_context(path.open("wb")) for key, path in paths.items()}
        writer = ReportWriter(sinks)
        normaliser = Normaliser(run_id, duplicates)
        stream = stack.enter_context(tape.open("rb"))
        for record in normaliser.file(tape.name, read_rows(tape.name, stream)):
            evaluation = evaluate(record, rule_set)
            pricing = price(evaluation.exceptions, record.fields.note_rate, IRR_TARGET)
            writer.add(
                LoanDispositioned(
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
            )
        writer.finish()
    return time.perf_counter() - started, normaliser.total_loans, digests(paths)


@dataclass
class FlameGraphs:
    """py-spy recording each worker into `directory/<name>.svg` until the run ends."""

    directory: Path | None
    pids: dict[str, int]
    recorders: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __enter__(self) -> FlameGraphs:
        if self.directory is None:
            return self
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            output = self.directory / f"{name}.svg"
            argv = [py_spy, "record", "--pid", str(pid), "--output", str(output), "--rate", "50"]
            log = (self.directory / f"{name}.py-spy.log").open("wb")
            self.recorders.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
        return self

    def __exit__(self, *_: object) -> None:
        # py-spy writes its SVG on SIGINT.
        for recorder in self.recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in self.recorders:
            try:
                recorder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()


def spawn_worker(
    name: str, env: dict[str, str], logs: Path, label: str | None = None
) -> tuple[supervisor.Spawned, int]:
    """One worker process on a free health port (not waited for); the process and its port."""
    port = ports.free_port()
    worker_env = {**env, PORT_VARIABLES.get(name, f"{name.upper()}_HTTP_PORT"): str(port)}
    argv = [sys.executable, "-m", {**WORKERS, **SCORING}[name]]
    log = logs / f"{label or name}.log"
    return supervisor.spawn(argv, log, env=worker_env, cwd=PROJECT), port


def start_workers(
    env: dict[str, str],
    logs: Path,
    spawned: dict[str, supervisor.Spawned],
    workers: dict[str, str] = WORKERS,
) -> None:
    """Spawn the workers into `spawned` and wait until each answers /health/ready."""
    for name in workers:
        spawned[name], port = spawn_worker(name, env, logs)
        url = f"http://127.0.0.1:{port}/health/ready"
        ready = READY_SECONDS.get(name, 120.0)
        if not supervisor.wait_until(lambda url=url: answers(url, timeout=2.0), timeout=ready):
            log = supervisor.tail(logs / f"{name}.log")
            raise RuntimeError(f"{name} never became ready:\n{log}")


def scale_out_later(
    seconds: float, env: dict[str, str], logs: Path, spawned: dict[str, supervisor.Spawned]
) -> threading.Timer:
    """A timer that starts a second rules and pricing instance into `spawned` after `seconds`."""

    def join() -> None:
        for name in SCALED_OUT:
            spawned[f"{name}-2"], _ = spawn_worker(name, env, logs, f"{name}-2")
        progress(f"second instances of {', '.join(SCALED_OUT)} started")

    return threading.Timer(seconds, join)


async def run_once(
    settings: CliSettings,
    gateway: GatewaySettings,
    tape: Path,
    timeout: float,
    on_requested: threading.Timer | None = None,
    scoring: bool = False,
) -> dict[str, Any]:
    """Upload the tape, request a run and follow the log until it ends; timings and result."""
    storage = LocalStorage(settings.storage_root)
    await storage.put_file(f"inputs/bench/{tape.name}", tape)
    run_id = uuid4()
    moments: dict[str, float] = {}
    async with RunLog(settings) as log:
        await log.catch_up()
        started = time.perf_counter()
        params = RunParams(irr_target=IRR_TARGET, pdate=datetime.now(UTC).date())
        await request(settings, run_id, params, "bench")
        if on_requested is not None:
            on_requested.start()

        def seen(event: Any) -> None:
            if event.run_id != run_id:
                return
            moments.setdefault(event.event_type, time.perf_counter() - started)
            progress(f"{event.event_type} after {moments[event.event_type]:.1f}s")

        log.on_event = seen
        view = await log.wait(run_id, timeout, after_catch_up=False)
    wall = time.perf_counter() - started
    if view is None:
        raise RuntimeError(f"run {run_id} never appeared in the log")
    if view.status == "completed":
        await projected(gateway, run_id, view.total_loans, started + timeout)
        moments["projected"] = time.perf_counter() - started
        progress(f"projections caught up after {moments['projected']:.1f}s")
        if scoring:
            await projected(gateway, run_id, view.total_loans, started + timeout, SCORED_LOANS)
            moments["scored"] = time.perf_counter() - started
            progress(f"every loan scored and projected after {moments['scored']:.1f}s")
    return {"wall_seconds": wall, "moments": moments, "view": view}


DISPOSITIONED_LOANS = "SELECT coalesce(sum(loans), 0) FROM gateway.batch_stats WHERE run_id = $1"
SCORED_LOANS = "SELECT coalesce(sum(loans), 0) FROM gateway.scored_batches WHERE run_id = $1"


async def projected(
    gateway: GatewaySettings,
    run_id: Any,
    loans: int,
    deadline: float,
    query: str = DISPOSITIONED_LOANS,
) -> None:
    """Wait until the projector has written every dispositioned (or scored) loan of the run."""
    conn = await connect(gateway)
    try:
        while time.perf_counter() < deadline:
            written = await conn.fetchval(query, run_id)
            if written >= loans:
                return
            await asyncio.sleep(PROJECTION_POLL_SECONDS)
    finally:
        await conn.close()
    raise RuntimeError(f"the projector did not catch up with run {run_id} in time")


def run_pipeline(
    tape: Path,
    loans: int,
    work: Path,
    timeout: float,
    flamegraphs: Path | None = None,
    scale_out: float | None = None,
    scoring: bool = False,
    scoring_samples: int = 5000,
) -> dict[str, Any]:
    """The tape through the four worker processes; wall time, throughput, peak RSS, digests."""
    base = load_settings()
    prefix = f"bench-{uuid4().hex[:8]}."
    server_url = base.database_dsn
    database = f"bench_{uuid4().hex[:8]}"
    storage_root = work / "storage"
    progress(f"creating topics {prefix}* and database {database}")
    names = asyncio.run(topics.ensure_topics(base.kafka_bootstrap_servers, prefix))
    database_url = asyncio.run(databases.create_database(server_url, database))
    gateway = GatewaySettings(
        database_url=database_url,
        topic_prefix=prefix,
        kafka_bootstrap_servers=base.kafka_bootstrap_servers,
    )
    asyncio.run(migrate(gateway))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": base.kafka_bootstrap_servers,
        "TOPIC_PREFIX": prefix,
        "DATABASE_URL": database_url,
        "STORAGE_TYPE": "local",
        "STORAGE_ROOT": str(storage_root),
        "INGEST_STATE_DIR": str(work / "ingest-state"),
        "INGEST_WORK_DIR": str(work / "ingest-work"),
        "REPORTING_WORK_DIR": str(work / "reporting-work"),
        "ENVIRONMENT": "production",
        # Production refuses a per-process signing key; the projector reads the gateway settings.
        "GATEWAY_JWT_SECRET": secrets.token_urlsafe(48),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "SCORING_STATE_DIR": str(work / "scoring-state"),
        "SCORING_BOOTSTRAP_SAMPLES": str(scoring_samples),
    }
    for folder in ("ingest-work", "reporting-work"):
        (work / folder).mkdir(exist_ok=True)
    settings = base.model_copy(update={"topic_prefix": prefix, "storage_root": storage_root})
    spawned: dict[str, supervisor.Spawned] = {}
    try:
        logs = work / "logs"
        workers = {**WORKERS, **SCORING} if scoring else WORKERS
        start_workers(env, logs, spawned, workers)
        progress(f"workers ready; running {loans} loans")
        pids = {name: process.pid for name, process in spawned.items()}
        timer = None if scale_out is None else scale_out_later(scale_out, env, logs, spawned)
        try:
            with PeakRss(pids) as rss, FlameGraphs(flamegraphs, pids):
                outcome = asyncio.run(run_once(settings, gateway, tape, timeout, timer, scoring))
        finally:
            if timer is not None:
                timer.cancel()
                if timer.ident is not None:
                    timer.join()
    finally:
        for process in spawned.values():
            supervisor.stop(process)
        asyncio.run(topics.delete_topics(base.kafka_bootstrap_servers, names))
        asyncio.run(databases.drop_database(server_url, database))
    view = outcome["view"]
    reports = {key: Path(location) for key, location in view.reports.items()}
    return {
        "status": view.status,
        "error": view.error,
        "total_loans": view.total_loans,
        "wall_seconds": round(outcome["wall_seconds"], 2),
        "loans_per_second": round(loans / outcome["wall_seconds"]),
        "ingested_after_seconds": round(outcome["moments"].get("run.tape_ingested", 0.0), 2),
        "projected_after_seconds": round(outcome["moments"].get("projected", 0.0), 2),
        "scored_after_seconds": round(outcome["moments"].get("scored", 0.0), 2),
        "completed_after_ingested_seconds": round(
            outcome["moments"].get("run.completed", 0.0)
            - outcome["moments"].get("run.tape_ingested", 0.0),
            2,
        ),
        "scaled_out": sorted(name for name in spawned if name.endswith("-2")),
        "peak_rss_mb": {name: round(peak / 2**20) for name, peak in sorted(rss.peaks.items())},
        "cpu_seconds": {name: round(cpu, 1) for name, cpu in sorted(rss.cpu_seconds.items())},
        "digests": digests(reports) if view.status == "completed" else {},
    }


def scoring_overhead(without: dict[str, Any], scored: dict[str, Any]) -> dict[str, Any]:
    """End to end without scoring (every loan projected) against with it (every loan projected
    and scored), and what the run's completion took in each."""
    base, total = without["projected_after_seconds"], scored["scored_after_seconds"]
    return {
        "end_to_end_seconds_without": base,
        "end_to_end_seconds_with": total,
        "added_percent": round(100 * (total - base) / base, 1) if base else None,
        "completed_seconds_without": without["wall_seconds"],
        "completed_seconds_with": scored["wall_seconds"],
    }


def main() -> None:
    """Generate the tape, run the pipeline and the plain loop, print what they took."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--bad-share", type=float, default=0.05)
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--work-dir", type=Path, default=None, help="Default: a temp folder.")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (logs).")
    parser.add_argument("--timeout", type=float, default=1800, help="Give up on the run after.")
    parser.add_argument(
        "--flamegraphs", type=Path, default=None, help="Record each worker with py-spy into DIR."
    )
    parser.add_argument(
        "--scale-out",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Start a second rules and pricing instance this long after the run request.",
    )
    parser.add_argument(
        "--scoring-overhead",
        action="store_true",
        help="Run without, then with the scoring worker; report the end-to-end overhead.",
    )
    parser.add_argument(
        "--scoring-samples", type=int, default=5000, help="History the scoring model learns."
    )
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the workers, topics and database are always cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with ExitStack() as cleanup:
        work = Path(tempfile.mkdtemp(prefix="loan-engine-bench-", dir=args.work_dir))
        if not args.keep:
            cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        progress(f"work folder {work}")
        tape = work / f"tape-{args.loans}.{args.format}"
        progress(f"generating {args.loans} loans to {tape}")
        generate_tape(tape, args.loans, args.seed, args.bad_share)
        pipeline = run_pipeline(
            tape, args.loans, work, args.timeout, args.flamegraphs, args.scale_out
        )
        result: dict[str, Any] = {"loans": args.loans, "pipeline": pipeline}
        if args.scoring_overhead:
            progress("running the same tape again, with the scoring worker")
            (work / "scored").mkdir()
            scored = run_pipeline(
                tape,
                args.loans,
                work / "scored",
                args.timeout,
                scoring=True,
                scoring_samples=args.scoring_samples,
            )
            result["with_scoring"] = scored
            result["scoring_overhead"] = scoring_overhead(pipeline, scored)
        if not args.skip_baseline:
            progress("running the plain single-process loop")
            (work / "plain").mkdir()
            seconds, loans, plain_digests = plain_loop(tape, work / "plain")
            result["plain_loop"] = {
                "seconds": round(seconds, 2),
                "loans_per_second": round(loans / seconds),
                "reports_identical": plain_digests == pipeline["digests"],
            }
            # The goal is a pipeline at least half as fast as one process doing the same work.
            result["ratio_to_plain_loop"] = round(seconds / pipeline["wall_seconds"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
