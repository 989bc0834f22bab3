"""CPU per Kafka record of a worker: `.venv/bin/python benchmarks/records.py [--worker rules]`.

Starts the rules (or pricing) worker as a process, as `benchmarks/pipeline.py` does, against the
broker named by KAFKA_BOOTSTRAP_SERVERS under a topic prefix of its own (removed afterwards), then
feeds it `--records` pre-built input batches of each of `--sizes` loans and reads the worker's
CPU seconds (user + system, from /proc) from the first record published until its consumer group
has committed past the last one. The worker's idle CPU (heartbeats, lag probes) over the same time
is measured before and subtracted. A least-squares line through the sizes splits the CPU into
microseconds per record (what a batch costs whatever its loans: the Kafka client, FastStream,
middlewares, commits) and per loan. `--flamegraph DIR` records the worker with py-spy during the
smallest size (DIR/<worker>-<size>.svg and a collapsed-stacks .txt). The worker's environment is
this process's, so settings under test pass through (`KAFKA_COMPRESSION=none`, ...).
The machine is shared: the figures are indicative, compare them within one sitting only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import msgspec
import psutil
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.hops import ingested_batch
from benchmarks.pipeline import spawn_worker
from contracts.codec import encode
from contracts.ids import batch_key
from contracts.topics import LOANS_EVALUATED, LOANS_INGESTED, Topic
from services.cli.stack import supervisor, topics
from services.cli.stack.services import answers
from services.common.kafka import MAX_REQUEST_BYTES, batch_headers, kafka_headers
from services.rules.domain import load_rule_set
from services.rules.handlers import evaluated_batch

INPUT: dict[str, Topic] = {"rules": LOANS_INGESTED, "pricing": LOANS_EVALUATED}
IDLE_SECONDS = 3.0
Body = tuple[str, bytes, list[tuple[str, bytes]]]


def input_bodies(worker: str, size: int, records: int, template: Any) -> list[Body]:
    """`records` encoded input batches of `size` loans (key, value, headers), numbered 0.."""
    batch = msgspec.structs.replace(template, events=template.events[:size])
    if worker == "pricing":
        batch = evaluated_batch(batch, load_rule_set(), datetime.now(UTC))
    run_id = uuid4()
    out = []
    for seq in range(records):
        numbered = msgspec.structs.replace(batch, run_id=run_id, batch_seq=seq)
        headers = kafka_headers(batch_headers(numbered))
        out.append((batch_key(run_id, seq), encode(numbered), headers))
    return out


def broker_process(bootstrap: str) -> psutil.Process | None:
    """The local process listening on the bootstrap port, when it can be seen (else None)."""
    port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    try:
        for connection in psutil.net_connections("tcp"):
            if connection.status == "LISTEN" and connection.laddr.port == port and connection.pid:
                return psutil.Process(connection.pid)
    except psutil.Error:
        pass
    return None


def cpu_seconds(process: psutil.Process | None) -> float:
    """User plus system CPU seconds of the process so far (0 for an unknown process)."""
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


async def publish(bootstrap: str, topic: str, bodies: list[Body]) -> None:
    """Send every body and wait for all acknowledgements."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type="zstd",
        max_request_size=MAX_REQUEST_BYTES,
        linger_ms=5,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=value, key=key.encode(), headers=headers)
            for key, value, headers in bodies
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed(bootstrap: str, group: str, topic: str) -> int:
    """The sum of the group's committed offsets on `topic` (records it has finished)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


def wait_committed(bootstrap: str, group: str, topic: str, total: int, timeout: float) -> None:
    """Block until the group has committed `total` records of `topic`."""
    deadline = time.monotonic() + timeout
    while asyncio.run(committed(bootstrap, group, topic)) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{group} did not commit {total} records of {topic} in time")
        time.sleep(0.05)


class Recorder:
    """py-spy on the worker while a size is fed (SVG flame graph and collapsed stacks)."""

    def __init__(self, directory: Path | None, pid: int, name: str) -> None:
        self.directory, self.pid, self.name = directory, pid, name
        self.recorders: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Recorder:
        if self.directory is None:
            return self
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.directory.mkdir(parents=True, exist_ok=True)
        for fmt, suffix in (("flamegraph", "svg"), ("raw", "txt")):
            output = self.directory / f"{self.name}.{suffix}"
            argv = [py_spy, "record", "--pid", str(self.pid), "--format", fmt, "-o", str(output)]
            argv += ["--rate", "200", "--nonblocking"]
            self.recorders.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        time.sleep(1.0)
        return self

    def __exit__(self, *_: object) -> None:
        for recorder in self.recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in self.recorders:
            recorder.wait(timeout=60)


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares `cpu_us = per_record + per_loan * loans` over (loans, cpu_us) points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx if sxx else 0.0
    return mean_y - slope * mean_x, slope


def measure(worker: str, args: argparse.Namespace) -> dict[str, Any]:
    """Feed one worker process every size in turn; its CPU per record and per loan."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    prefix = f"records-{uuid4().hex[:8]}."
    group = f"{prefix}{worker}"
    topic = INPUT[worker].physical(prefix)
    template = ingested_batch(max(args.sizes), args.bad_share)
    feeds = {size: input_bodies(worker, size, args.records, template) for size in args.sizes}
    names = asyncio.run(topics.ensure_topics(bootstrap, prefix))
    work = Path(tempfile.mkdtemp(prefix="loan-engine-records-"))
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": prefix,
        "ENVIRONMENT": "production",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": args.log_level,
    }
    spawned = None
    rows: dict[int, dict[str, float]] = {}
    try:
        spawned, port = spawn_worker(worker, env, work)
        url = f"http://127.0.0.1:{port}/health/ready"
        if not supervisor.wait_until(lambda: answers(url, timeout=2.0), timeout=120):
            log = supervisor.tail(work / f"{worker}.log")
            raise RuntimeError(f"{worker} never became ready:\n{log}")
        process = psutil.Process(spawned.pid)
        broker = broker_process(bootstrap)
        time.sleep(2.0)  # let the group settle
        before, started = cpu_seconds(process), time.monotonic()
        time.sleep(IDLE_SECONDS)
        idle_rate = (cpu_seconds(process) - before) / (time.monotonic() - started)
        total = 0
        for size in sorted(args.sizes):
            total += args.records
            label = f"{worker}-{size}"
            directory = args.flamegraph if size == min(args.sizes) else None
            with Recorder(directory, spawned.pid, label):
                before, started = cpu_seconds(process), time.monotonic()
                system_before = process.cpu_times().system
                broker_before = cpu_seconds(broker)
                asyncio.run(publish(bootstrap, topic, feeds[size]))
                wait_committed(bootstrap, group, topic, total, args.timeout)
                cpu = cpu_seconds(process) - before
                system = process.cpu_times().system - system_before
                broker_cpu = cpu_seconds(broker) - broker_before
                wall = time.monotonic() - started
            net = cpu - idle_rate * wall
            rows[size] = {
                "cpu_seconds": round(cpu, 3),
                "system_cpu_seconds": round(system, 3),
                "wall_seconds": round(wall, 2),
                "us_per_record": round(net / args.records * 1e6),
                "us_per_loan": round(net / args.records / size * 1e6, 2),
                # The broker is shared: its CPU includes everyone's traffic and our feeding.
                "broker_cpu_seconds": round(broker_cpu, 3),
            }
    finally:
        if spawned is not None:
            supervisor.stop(spawned)
        asyncio.run(topics.delete_topics(bootstrap, names))
        shutil.rmtree(work, ignore_errors=True)
    per_record, per_loan = fit([(size, row["us_per_record"]) for size, row in rows.items()])
    return {
        "idle_cpu_percent": round(idle_rate * 100, 2),
        "sizes": rows,
        "fit_us_per_record": round(per_record),
        "fit_us_per_loan": round(per_loan, 2),
        "record_share_at_500_us_per_loan": round(per_record / 500, 2),
    }


def main() -> None:
    """Measure the chosen workers and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=sorted(INPUT), action="append")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500, 2000])
    parser.add_argument("--records", type=int, default=300, help="records fed per size")
    parser.add_argument("--bad-share", type=float, default=0.05, help="share of bad rows")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--log-level", default="WARNING", help="the worker's LOG_LEVEL")
    parser.add_argument("--flamegraph", type=Path, default=None, help="py-spy into DIR")
    args = parser.parse_args()
    result = {worker: measure(worker, args) for worker in args.worker or sorted(INPUT)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
