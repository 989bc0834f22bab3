"""What folding loans.scored.v1 costs the projector, CPU-seconds per loan.

    .venv/bin/python benchmarks/score_fold.py --loans 50000

Builds one run's scored batches of 500 loans (the scoring service's own routing and factor text
over a spread of probabilities and SHAP contributions; no model), each followed by the review
job's `review.auto_decisions_recorded` of its auto-routed loans on reviews.v1, then plans and
writes them as the projector does (`plan` + `write_chunk`, 10 batches a transaction, no broker)
into DATABASE_URL (point it at a scratch database: it truncates the read models). Prints the CPU
seconds per loan of this process and of its PostgreSQL backend (from /proc, when the server runs
on this machine): on a loaded machine wall time is noise. A second pass over the same records
finds every row present and takes the upsert path (what a replay or redelivery costs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

from contracts.codec import encode
from contracts.ids import batch_key, event_id
from contracts.loans import LoanRecord, RunParams
from contracts.reviews import AutoDecision, AutoDecisionsRecorded
from contracts.scoring import FEATURES, LoanScored, ScoredBatch
from contracts.topics import LOANS_SCORED, REVIEWS
from services.gateway.db import connect, migrate
from services.gateway.projector.maintenance import reset
from services.gateway.projector.plan import Record, plan
from services.gateway.projector.writer import current_generation, write_chunk
from services.gateway.settings import GatewaySettings
from services.scoring.domain import Prediction, assess, features_of, load_policy

BATCH = 500


def backend_cpu(pid: int) -> float | None:
    """CPU seconds of a local process from /proc (None when it is not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scored_records(loans: int) -> list[Record]:
    """One run's loans.scored.v1 records."""
    policy = load_policy()
    run_id = uuid4()
    now = datetime.now(UTC)
    params = RunParams(irr_target=Decimal("8.05"), pdate=now.date())
    events = []
    for seq in range(1, loans + 1):
        loan = LoanRecord.model_validate(
            {
                "loan_id": uuid4(),
                "seq": seq,
                "source_file": "tape.csv",
                "row": seq + 1,
                "fields": {
                    "seller_loan_number": f"L{seq:07d}",
                    "loan_amount": f"{100000 + seq % 700000}.00",
                    "note_rate": "6.875",
                    "ltv_ratio": f"{60 + seq % 40}.5",
                    "dti_ratio": f"{20 + seq % 30}.1",
                    "credit_score": str(580 + seq % 240),
                    "property_type": ("sfr", "condo", "townhouse")[seq % 3],
                    "occupancy_status": ("primary", "second_home", "investment")[seq % 3],
                    "loan_purpose": ("purchase", "rate_term_refinance")[seq % 2],
                    "purchase_price": "300000",
                    "appraisal_value": "306000",
                },
            }
        )
        features = features_of(loan)
        contributions = tuple(((seq + i) % 7 - 3) / 10 for i in range(len(FEATURES)))
        disposition = ("to_purchase", "projected", "rejected")[seq % 3]
        assessment = assess(
            disposition, features, Prediction(((seq * 37) % 60) / 100, contributions), policy
        )
        events.append(
            LoanScored(
                event_id=event_id("loan.scored", run_id, loan.loan_id),
                run_id=run_id,
                occurred_at=now,
                producer="scoring",
                loan_id=loan.loan_id,
                seq=seq,
                seller_loan_number=loan.fields.seller_loan_number,
                disposition=disposition,
                model_version="1",
                score=assessment.score,
                probability_default=assessment.probability_default,
                risk_category=assessment.risk_category,
                positive_factors=assessment.positive_factors,
                negative_factors=assessment.negative_factors,
                routing=assessment.routing,
                features=features,
            )
        )
    records = []
    for number, start in enumerate(range(0, loans, BATCH)):
        batch = ScoredBatch(
            run_id=run_id,
            batch_seq=number,
            params=params,
            model_version="1",
            policy_version=policy.version,
            events=tuple(events[start : start + BATCH]),
        )
        key = batch_key(run_id, number).encode()
        records.append(Record(LOANS_SCORED.name, 0, 2 * number, key, encode(batch)))
        decided = AutoDecisionsRecorded(
            event_id=event_id("review.auto_decisions_recorded", run_id, number),
            run_id=run_id,
            batch_seq=number,
            decisions=tuple(
                AutoDecision(
                    loan_id=event.loan_id,
                    seq=event.seq,
                    decision_type=event.routing.decision,
                    score=event.score,
                )
                for event in batch.events
                if event.routing.decision in ("auto_approve", "auto_decline")
            ),
            occurred_at=now,
        )
        records.append(Record(REVIEWS.name, 0, 2 * number + 1, key, encode(decided)))
    return records


async def fold(settings: GatewaySettings, records: list[Record], chunk: int) -> None:
    """Plan and write the records twice (fresh, then upserted), printing CPU per loan."""
    loans = len(records) // 2 * BATCH
    conn = await connect(settings)
    try:
        await reset(conn)
        generation = await current_generation(conn)
        for label in ("first write (COPY)", "second write (upsert)"):
            server, client, wall = (
                backend_cpu(conn.get_server_pid()),
                time.process_time(),
                time.perf_counter(),
            )
            for start in range(0, len(records), chunk):
                part = records[start : start + chunk]
                await write_chunk(conn, plan(part), {("bench", 0): start + len(part)}, generation)
            client = time.process_time() - client
            after = backend_cpu(conn.get_server_pid())
            server_text = (
                "unknown"
                if server is None or after is None
                else f"{1e6 * (after - server) / loans:.1f}"
            )
            print(  # noqa: T201
                f"{label}: {loans} loans, {time.perf_counter() - wall:.1f}s wall; CPU per loan: "
                f"projector {1e6 * client / loans:.1f} us, PostgreSQL backend {server_text} us"
            )
    finally:
        await conn.close()


def main() -> None:
    """Build, fold twice, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=50_000)
    parser.add_argument("--chunk", type=int, default=10, help="Batches per transaction.")
    arguments = parser.parse_args()
    settings = GatewaySettings()
    asyncio.run(migrate(settings))
    records = scored_records(arguments.loans - arguments.loans % BATCH or BATCH)
    asyncio.run(fold(settings, records, arguments.chunk))


if __name__ == "__main__":
    main()
