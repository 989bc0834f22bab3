"""The loan topics' codecs side by side: `.venv/bin/python benchmarks/codec.py [--loans 500]`.

Builds one priced batch of the golden-like generated tape's loans, then times (CPU seconds, best
of `--repeat`) encoding and decoding it with the pydantic contract and with the msgspec wire
Struct, and checks that both write the same bytes. Prints microseconds per loan.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from contracts import loans, wire
from contracts.codec import decode, encode
from contracts.ids import event_id
from contracts.numbers import DEFAULT_IRR_TARGET
from services.ingest.domain import InMemoryDuplicateIndex, Normaliser
from services.ingest.readers import read_rows
from services.ingest.tapegen import generate_tape
from services.pricing.domain import price
from services.rules.domain import evaluate, load_rule_set


def priced_batch(count: int) -> wire.PricedBatch:
    """A priced batch of `count` generated loans, as pricing publishes it."""
    rule_set, run_id, now = load_rule_set(), uuid4(), datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        tape = Path(folder) / "tape.csv"
        generate_tape(tape, count, seed=11, bad_share=0.05)
        with tape.open("rb") as stream:
            normaliser = Normaliser(run_id, InMemoryDuplicateIndex())
            records = list(normaliser.file(tape.name, read_rows(tape.name, stream)))
    events = []
    for record in records:
        outcome = evaluate(record, rule_set)
        events.append(
            wire.LoanPriced(
                event_id=event_id("loan.priced", run_id, record.loan_id),
                run_id=run_id,
                occurred_at=now,
                producer="pricing",
                loan=record,
                exceptions=outcome.exceptions,
                quality=outcome.quality,
                rule_set_version=rule_set.version,
                pricing=price(outcome.exceptions, record.fields.note_rate, DEFAULT_IRR_TARGET),
            )
        )
    params = wire.RunParams(pdate=now.date())
    return wire.PricedBatch(run_id=run_id, batch_seq=0, params=params, events=tuple(events))


def per_loan(operation: Callable[[], Any], loans_count: int, repeat: int) -> float:
    """Best CPU microseconds per loan of `operation` over `repeat` runs."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        operation()
        best = min(best, time.process_time() - started)
    return round(best / loans_count * 1e6, 2)


def main() -> None:
    """Time both codecs on one batch and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    batch = priced_batch(args.loans)
    data = encode(batch)
    model = decode(data, loans.PricedBatch)
    count = len(batch.events)
    result = {
        "loans": count,
        "bytes": len(data),
        "same_bytes": encode(model) == data,
        "us_per_loan": {
            "pydantic_encode": per_loan(lambda: encode(model), count, args.repeat),
            "pydantic_decode": per_loan(
                lambda: decode(data, loans.PricedBatch), count, args.repeat
            ),
            "msgspec_encode": per_loan(lambda: encode(batch), count, args.repeat),
            "msgspec_decode": per_loan(lambda: decode(data, wire.PricedBatch), count, args.repeat),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
