"""How fast the projector writes loans: `.venv/bin/python benchmarks/projector.py`.

Builds a run of N loans (realistic batches of 500, a third of them with exceptions), then times
either the decode-and-write path alone (`--direct`: plan + write_chunk, no broker) or the whole
projector reading them from Kafka (`--kafka`: all four loan topics published first, then one
`catch_up` timed; a replay from nothing this large runs without the loan tables' secondary
indexes and builds them at the end, inside the timed part), or (`--log`) a projector replaying
every topic of an existing stack (its TOPIC_PREFIX, read only: scores, reviews and all) into the
scratch database, the way `projections rebuild` does, with the process's peak RSS. Besides
wall time it prints the CPU seconds of this process and of its PostgreSQL backend (from /proc,
when the server runs on this machine): on a loaded machine wall time is noise, and
loans / max(client, server) CPU-seconds is what two otherwise idle cores would carry. Uses
DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS / TOPIC_PREFIX like the services; point it at a scratch
database: it truncates the read models. With `--kafka`, a TOPIC_PREFIX starting with `bench-`
gets its topics created and deleted again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import NAMESPACE_URL, uuid4, uuid5

import orjson

from contracts import topics
from contracts.ids import batch_key
from services.cli.stack.topics import delete_topics, ensure_topics
from services.common.kafka import KafkaPublisher
from services.gateway.db import connect, migrate
from services.gateway.projector.consumer import Projector
from services.gateway.projector.maintenance import reset, try_projector_lock
from services.gateway.projector.plan import Record, plan
from services.gateway.projector.writer import current_generation, write_chunk
from services.gateway.settings import GatewaySettings
from services.gateway.tables import SCHEMA

# The four stage topics every loan passes (scores have a shape of their own and are not timed).
STAGE_TOPICS = (
    topics.LOANS_INGESTED,
    topics.LOANS_EVALUATED,
    topics.LOANS_PRICED,
    topics.LOANS_DISPOSITIONED,
)
EXCEPTION = {
    "exception_type": "dti_ratio",
    "category": "credit",
    "severity": "hard",
    "message": "DTI ratio exceeds maximum of 50%",
    "rejection_criteria": "notebook.dti_exceeds_maximum",
}


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall seconds, and CPU seconds of this process and of the database backend (None: unknown)."""

    wall: float
    client_cpu: float
    server_cpu: float | None


def backend_cpu(pid: int) -> float | None:
    """CPU seconds of a local process from /proc (None when it is not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stopwatch:
    """Wall and CPU time of this process and of one PostgreSQL backend."""

    def __init__(self, backend_pid: int) -> None:
        self.backend_pid = backend_pid
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        self.server = backend_cpu(backend_pid)

    def stop(self) -> Timing:
        """The time since this stopwatch started."""
        server = backend_cpu(self.backend_pid)
        return Timing(
            time.perf_counter() - self.wall,
            time.process_time() - self.cpu,
            None if server is None or self.server is None else server - self.server,
        )


def _loan(run_id: str, seq: int) -> dict[str, object]:
    rejected = seq % 3 == 0
    loan_id = str(uuid5(NAMESPACE_URL, f"{run_id}/{seq}"))
    return {
        "event_id": loan_id,
        "event_type": "loan.dispositioned",
        "schema_version": 1,
        "run_id": run_id,
        "occurred_at": "2026-11-23T09:30:00Z",
        "producer": "benchmark",
        "loan": {
            "loan_id": loan_id,
            "seq": seq,
            "source_file": "tape.csv",
            "row": seq,
            "fields": {
                "seller_loan_number": f"LN{seq:09d}",
                "loan_amount": "250000",
                "note_rate": "7.786",
                "ltv_ratio": "80.00",
                "dti_ratio": "55.0" if rejected else "35.0",
                "credit_score": "720",
                "property_type": "SFR",
                "occupancy_status": "Primary",
                "loan_purpose": "Purchase",
                "purchase_price": "312500",
                "appraisal_value": "315000",
            },
            "invalid": [],
            "extra": {"borrower_name": f"Borrower {seq}", "state": "NY"},
            "duplicate_of": None,
        },
        "exceptions": [EXCEPTION] if rejected else [],
        "quality": {
            "present_fields": 11,
            "numeric_present": 7,
            "numeric_valid": 7,
            "unique": True,
            "rules_passed": 9 if rejected else 10,
            "dq_score": "97.50" if rejected else "100.00",
        },
        "rule_set_version": "2026.11.1",
        "pricing": None if rejected else {"pricing_spread": "-0.2640", "final_price": "99.3400"},
        "disposition": "rejected" if rejected else "to_purchase",
    }


def batches(run_id: str, loans: int, size: int = 500) -> Iterator[tuple[int, bytes]]:
    """(batch_seq, JSON value) of dispositioned batches covering `loans` loans."""
    params = {"irr_target": "8.05", "pdate": "2026-11-23", "sales_team_id": None}
    for seq, start in enumerate(range(1, loans + 1, size)):
        events = [_loan(run_id, n) for n in range(start, min(start + size, loans + 1))]
        body = {
            "schema_version": 1,
            "run_id": run_id,
            "batch_seq": seq,
            "params": params,
            "batch_type": "loans.dispositioned",
            "events": events,
        }
        yield seq, orjson.dumps(body)


async def direct(settings: GatewaySettings, loans: int, chunk: int) -> Timing:
    """Time to plan and write every batch, `chunk` batches a transaction."""
    run_id = str(uuid4())
    now = int(datetime.now(UTC).timestamp() * 1000)
    records = [
        Record(
            topics.LOANS_DISPOSITIONED.name,
            0,
            seq,
            batch_key(run_id, seq).encode(),
            value,  # type: ignore[arg-type]
            (("event-type", b"loans.dispositioned"),),
            now,
        )
        for seq, value in batches(run_id, loans)
    ]
    conn = await connect(settings)
    try:
        await reset(conn)
        generation = await current_generation(conn)
        watch = Stopwatch(conn.get_server_pid())
        for start in range(0, len(records), chunk):
            part = records[start : start + chunk]
            await write_chunk(conn, plan(part), {("bench", 0): start + len(part)}, generation)
        return watch.stop()
    finally:
        await conn.close()


async def through_kafka(settings: GatewaySettings, loans: int) -> Timing:
    """Time for a projector to catch up with a run published on the four stage topics."""
    run_id = str(uuid4())
    names = await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_prefix)
    conn = await connect(settings)
    try:
        await reset(conn)
        async with KafkaPublisher(settings) as publisher:
            pending = []
            for seq, value in batches(run_id, loans):
                count = str(min(500, loans - seq * 500))
                for topic in STAGE_TOPICS:
                    headers = {"event-type": topic.name.removesuffix(".v1"), "loan-count": count}
                    pending.append(
                        publisher.publish_raw(topic, batch_key(run_id, seq), value, headers)
                    )  # type: ignore[arg-type]
                if len(pending) >= 64:
                    await asyncio.gather(*pending)
                    pending = []
            await asyncio.gather(*pending)
        projector = Projector(settings, conn)
        await projector.start()
        try:
            watch = Stopwatch(conn.get_server_pid())
            await projector.catch_up(timeout=3600)
            await projector.stop()  # builds the indexes if the bulk replay has not yet
            return watch.stop()
        finally:
            await projector.stop()
    finally:
        await conn.close()
        if settings.topic_prefix.startswith("bench-"):
            await delete_topics(settings.kafka_bootstrap_servers, names)


async def replay_log(settings: GatewaySettings) -> tuple[Timing, dict[str, int]]:
    """Time for a projector to replay every topic of an existing stack into a scratch database."""
    conn = await connect(settings)
    try:
        if not await try_projector_lock(conn):
            raise SystemExit(
                "a projector runs on this database (it holds the projector lock): point "
                "DATABASE_URL at a scratch database, not the stack's"
            )
        await reset(conn)
        projector = Projector(settings, conn)
        await projector.start()
        try:
            watch = Stopwatch(conn.get_server_pid())
            await projector.catch_up(timeout=3600)
            await projector.stop()
            timing = watch.stop()
        finally:
            await projector.stop()
        stages = await conn.fetch(
            f"SELECT stage, sum(loan_count)::bigint AS loans FROM {SCHEMA}.run_batches "
            "GROUP BY stage"
        )
        return timing, {row["stage"]: row["loans"] for row in stages}
    finally:
        await conn.close()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Run the benchmark and print loans per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=40, help="Batches per transaction (direct).")
    parser.add_argument("--kafka", action="store_true", help="Time the projector over Kafka.")
    parser.add_argument(
        "--log", action="store_true", help="Replay an existing stack's topics (TOPIC_PREFIX)."
    )
    arguments = parser.parse_args()
    if arguments.log:
        settings = GatewaySettings()
        asyncio.run(migrate(settings))
        timing, stages = asyncio.run(replay_log(settings))
        loans = stages.get("dispositioned", 0)
        print(  # noqa: T201
            f"log: {loans} dispositioned loans ({stages}) in {timing.wall:.1f}s = "
            f"{loans / timing.wall:,.0f} loans/s wall; CPU: projector {timing.client_cpu:.2f}s, "
            "PostgreSQL backend "
            + ("unknown" if timing.server_cpu is None else f"{timing.server_cpu:.2f}s")
            + f"; peak RSS {peak_rss_mb():.0f} MB"
        )
        return
    settings = GatewaySettings(projector_max_records=arguments.chunk * 4)
    asyncio.run(migrate(settings))
    if arguments.kafka:
        timing = asyncio.run(through_kafka(settings, arguments.loans))
    else:
        timing = asyncio.run(direct(settings, arguments.loans, arguments.chunk))
    mode = "kafka" if arguments.kafka else "direct"
    loans = arguments.loans
    print(  # noqa: T201
        f"{mode}: {loans} loans in {timing.wall:.1f}s = {loans / timing.wall:,.0f} loans/s wall; "
        f"CPU: projector {timing.client_cpu:.2f}s, PostgreSQL backend "
        + ("unknown" if timing.server_cpu is None else f"{timing.server_cpu:.2f}s")
    )
    print(f"projector CPU per loan: {timing.client_cpu / loans * 1e6:.1f} us")  # noqa: T201
    if timing.server_cpu is not None:
        busiest = max(timing.client_cpu, timing.server_cpu)
        print(f"two idle cores would carry {loans / busiest:,.0f} loans/s")  # noqa: T201


if __name__ == "__main__":
    main()
