"""Hostile XLSX files through a real ingest process: time to the run's failure, RSS, SIGTERM.

    .venv/bin/python benchmarks/ingest_hostile_xlsx.py [--case huge-rows.xlsx whitespace.xlsx]
        [--sigterm-after SECONDS]

Builds each file with `tests/corpus/build.py` (a 3.7 MB XLSX of 30.6 million two-cell rows; an
XLSX whose sheet unpacks to 1.99 GB of whitespace), starts `python -m services.ingest.main` under
a topic prefix and storage of its own against KAFKA_BOOTSTRAP_SERVERS, requests a run over each
file and prints one JSON object per case: seconds from the request to the run's failure, the
ingest process's peak RSS (psutil, sampled every 0.1 s) and its RSS after, how many run starts and
failures and loan batches the run got, and how long the process took to exit after SIGTERM. With
`--sigterm-after`, SIGTERM is sent that many seconds after the request instead (mid-tape; give a
number of rows as the case, e.g. `--case 300000`, for a good tape that long).
Numbers measured on a shared, loaded machine are indicative only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.codec import decode_union
from contracts.ids import event_id
from contracts.loans import RunParams
from contracts.runs import RUN_EVENT, RunFailed, RunRequested, RunStarted, TapeIngested
from contracts.topics import LOANS_INGESTED, RUNS
from services.cli.stack.topics import delete_topics, ensure_topics
from services.common.kafka import KafkaPublisher
from services.common.settings import ServiceSettings
from tests.corpus.build import build, good_csv

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sampler:
    """Samples a process's RSS in the background."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.last = 0

    async def run(self) -> None:
        while True:
            try:
                self.last = self.process.memory_info().rss
            except psutil.Error:
                return
            self.peak = max(self.peak, self.last)
            await asyncio.sleep(0.1)


async def measure(case: str, folder: Path, bootstrap: str, sigterm_after: float | None) -> Any:
    prefix = f"bench-{uuid4().hex[:8]}."
    names = await ensure_topics(bootstrap, prefix)
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix)
    storage = folder / "storage"
    inputs = storage / "inputs" / "hostile"
    inputs.mkdir(parents=True)
    if case.endswith(".xlsx"):
        build(case, inputs)
    else:  # a good tape of that many rows, e.g. "300000": for SIGTERM mid-tape
        good_csv(inputs / "good.csv", int(case))
    environment = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": prefix,
        "STORAGE_ROOT": str(storage),
        "INGEST_STATE_DIR": str(folder / "state"),
        "INGEST_WORK_DIR": str(folder / "work"),
        "INGEST_HTTP_PORT": str(free_port()),
    }
    worker = subprocess.Popen(  # noqa: ASYNC220 - started once, waited on below
        [sys.executable, "-m", "services.ingest.main"], cwd=ROOT, env=environment
    )
    sampler = Sampler(worker.pid)
    sampling = asyncio.create_task(sampler.run())
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [
        TopicPartition(settings.topic(topic), number)
        for topic in (RUNS, LOANS_INGESTED)
        for number in range(topic.partitions)
    ]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    run_id = uuid4()
    created = datetime.now(UTC)
    request = RunRequested(
        event_id=event_id("run.requested", run_id),
        run_id=run_id,
        occurred_at=created,
        producer="benchmark",
        params=RunParams(irr_target=Decimal("8.05"), pdate=created.date()),
        folder="hostile",
        created_at=created,
    )
    events: list[Any] = []
    batches = 0
    try:
        await asyncio.sleep(8)  # the worker joins its groups
        async with KafkaPublisher(settings) as publisher:
            started = time.monotonic()
            await publisher.publish(RUNS, str(run_id), request)
        deadline = started + (sigterm_after or 1800)
        while time.monotonic() < deadline and not any(
            isinstance(event, RunFailed | TapeIngested) for event in events
        ):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    if record.topic == settings.topic(RUNS):
                        event = decode_union(record.value, RUN_EVENT)
                        if event.run_id == run_id:
                            events.append(event)
                    else:
                        batches += 1
        elapsed = time.monotonic() - started
        failure = next((e for e in events if isinstance(e, RunFailed)), None)
        start = next((e for e in events if isinstance(e, RunStarted)), None)
        end = next((e for e in events if isinstance(e, RunFailed | TapeIngested)), None)
        await asyncio.sleep(5)
        after = sampler.last
        stopping = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        while worker.poll() is None and time.monotonic() - stopping < 60:
            await asyncio.sleep(0.05)
        stopped = time.monotonic() - stopping
        return {
            "case": case,
            "seconds_to_outcome": round(elapsed, 1),
            # By ingest's own clock: from its run start to the run's failure (or ingest's end).
            "ingest_seconds": (
                round((end.occurred_at - start.occurred_at).total_seconds(), 1)
                if end is not None and start is not None
                else None
            ),
            "outcome": failure.error if failure is not None else _progress(events),
            "peak_rss_mb": sampler.peak // 2**20,
            "rss_after_mb": after // 2**20,
            "run_started": sum(isinstance(e, RunStarted) for e in events),
            "run_failed": sum(isinstance(e, RunFailed) for e in events),
            "loan_batches": batches,
            "seconds_to_exit_after_sigterm": round(stopped, 1),
            "exit_code": worker.poll(),
        }
    finally:
        sampling.cancel()
        if worker.poll() is None:
            worker.kill()
        await consumer.stop()
        await delete_topics(bootstrap, names)


def _progress(events: list[Any]) -> str:
    if any(isinstance(event, TapeIngested) for event in events):
        return "ingested"
    return "in progress" if events else "not started"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", nargs="+", default=["huge-rows.xlsx", "whitespace.xlsx"])
    parser.add_argument("--sigterm-after", type=float, default=None)
    arguments = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    for case in arguments.case:
        with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
            result = await measure(case, Path(folder), bootstrap, arguments.sigterm_after)
        print(json.dumps(result), flush=True)  # noqa: T201


if __name__ == "__main__":
    asyncio.run(main())
