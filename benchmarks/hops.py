"""CPU per loan of the rules and pricing hops: `.venv/bin/python benchmarks/hops.py [--loans 500]`.

Builds the ingested batch of a generated tape (`--bad-share`, 5 % bad rows as in
`benchmarks/codec.py` by default), then times what each worker does per batch outside the Kafka
client (CPU seconds, best of `--repeat`):
decode the incoming JSON, run the handler's work (domain, events, metrics), encode the output.
Prints microseconds per loan as JSON; `--profile rules|pricing` prints a cProfile of that hop.
The machine is shared: the figures are indicative, compare them within one sitting only.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
from datetime import UTC, datetime
from uuid import uuid4

from benchmarks.cpu import cpu_per_loan, generated_records
from contracts import wire
from contracts.codec import decode, encode
from contracts.ids import event_id
from services.common.governance_metrics import record_dq_scores
from services.common.metrics import record_exceptions
from services.pricing.handlers import priced_batch
from services.rules.domain import load_rule_set
from services.rules.handlers import evaluated_batch, rule_set_for


def ingested_batch(count: int, bad_share: float = 0.05) -> wire.IngestedBatch:
    """An ingested batch of `count` generated loans, as ingest publishes it."""
    run_id, now = uuid4(), datetime.now(UTC)
    events = tuple(
        wire.LoanIngested(
            event_id=event_id("loan.ingested", run_id, record.loan_id),
            run_id=run_id,
            occurred_at=now,
            producer="ingest",
            loan=record,
        )
        for record in generated_records(count, run_id, bad_share)
    )
    params = wire.RunParams(pdate=now.date())
    return wire.IngestedBatch(run_id=run_id, batch_seq=0, params=params, events=events)


def rules_hop(data: bytes, now: datetime) -> bytes:
    """What `on_loans_ingested` does with one record's body (decoder included)."""
    rule_set = load_rule_set()
    batch = decode(data, wire.IngestedBatch)
    output = evaluated_batch(batch, rule_set_for(batch, rule_set), now)
    record_exceptions(e for event in output.events for e in event.exceptions)
    record_dq_scores(event.quality.dq_score for event in output.events)
    return encode(output)


def pricing_hop(data: bytes, now: datetime) -> bytes:
    """What `on_loans_evaluated` does with one record's body (decoder included)."""
    return encode(priced_batch(decode(data, wire.EvaluatedBatch), now))


def main() -> None:
    """Time both hops on one batch and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--bad-share", type=float, default=0.05, help="share of bad rows")
    parser.add_argument("--profile", choices=("rules", "pricing"))
    args = parser.parse_args()
    now = datetime.now(UTC)
    ingested = encode(ingested_batch(args.loans, args.bad_share))
    evaluated = rules_hop(ingested, now)
    count = args.loans
    hops = {
        "rules": lambda: rules_hop(ingested, now),
        "pricing": lambda: pricing_hop(evaluated, now),
    }
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [hops[args.profile]() for _ in range(args.repeat)])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    result = {
        "loans": count,
        "us_per_loan": {
            "rules_decode": cpu_per_loan(
                lambda: decode(ingested, wire.IngestedBatch), count, args.repeat
            ),
            "rules_hop": cpu_per_loan(hops["rules"], count, args.repeat),
            "pricing_decode": cpu_per_loan(
                lambda: decode(evaluated, wire.EvaluatedBatch), count, args.repeat
            ),
            "pricing_hop": cpu_per_loan(hops["pricing"], count, args.repeat),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
