"""How fast the projector writes loans: `.venv/bin/python benchmarks/projector.py`.

Builds a run of N loans (realistic batches of 500, a third of them with exceptions), then times
either the decode-and-write path alone (`--direct`: plan + write_chunk, no broker) or the whole
projector reading them from Kafka (`--kafka`: all four loan topics published first, then one
`catch_up` timed). Uses DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS / TOPIC_PREFIX like the services;
point it at a scratch database: it truncates the read models. With `--kafka`, a TOPIC_PREFIX
starting with `bench-` gets its topics created and deleted again.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, uuid4, uuid5

import orjson

from contracts import topics
from contracts.ids import batch_key
from services.cli.stack.topics import delete_topics, ensure_topics
from services.common.kafka import KafkaPublisher
from services.gateway.db import connect, migrate
from services.gateway.projector.consumer import Projector
from services.gateway.projector.maintenance import reset
from services.gateway.projector.plan import Record, plan
from services.gateway.projector.writer import current_generation, write_chunk
from services.gateway.settings import GatewaySettings

EXCEPTION = {
    "exception_type": "dti_ratio",
    "category": "credit",
    "severity": "hard",
    "message": "DTI ratio exceeds maximum of 50%",
    "rejection_criteria": "notebook.dti_exceeds_maximum",
}


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


async def direct(settings: GatewaySettings, loans: int, chunk: int) -> float:
    """Seconds to plan and write every batch, `chunk` batches a transaction."""
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
        started = time.perf_counter()
        for start in range(0, len(records), chunk):
            part = records[start : start + chunk]
            await write_chunk(conn, plan(part), {("bench", 0): start + len(part)}, generation)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def through_kafka(settings: GatewaySettings, loans: int) -> float:
    """Seconds for a projector to catch up with a run published on all four loan topics."""
    run_id = str(uuid4())
    names = await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_prefix)
    conn = await connect(settings)
    try:
        await reset(conn)
        async with KafkaPublisher(settings) as publisher:
            pending = []
            for seq, value in batches(run_id, loans):
                count = str(min(500, loans - seq * 500))
                for topic in topics.LOAN_TOPICS:
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
            started = time.perf_counter()
            await projector.catch_up(timeout=3600)
            return time.perf_counter() - started
        finally:
            await projector.stop()
    finally:
        await conn.close()
        if settings.topic_prefix.startswith("bench-"):
            await delete_topics(settings.kafka_bootstrap_servers, names)


def main() -> None:
    """Run the benchmark and print loans per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=40, help="Batches per transaction (direct).")
    parser.add_argument("--kafka", action="store_true", help="Time the projector over Kafka.")
    arguments = parser.parse_args()
    settings = GatewaySettings(projector_max_records=arguments.chunk * 4)
    asyncio.run(migrate(settings))
    if arguments.kafka:
        seconds = asyncio.run(through_kafka(settings, arguments.loans))
    else:
        seconds = asyncio.run(direct(settings, arguments.loans, arguments.chunk))
    mode = "kafka" if arguments.kafka else "direct"
    rate = arguments.loans / seconds
    print(f"{mode}: {arguments.loans} loans in {seconds:.1f}s = {rate:,.0f} loans/s")  # noqa: T201


if __name__ == "__main__":
    main()
