"""The loan topics' codecs side by side: `.venv/bin/python benchmarks/codec.py [--loans 500]`.

Builds one priced batch of the golden-like generated tape's loans, then times (CPU seconds, best
of `--repeat`) encoding and decoding it with the pydantic contract and with the msgspec wire
Struct, and checks that both write the same bytes. Prints microseconds per loan.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from uuid import uuid4

from benchmarks.cpu import cpu_per_loan, generated_records, priced_events
from contracts import loans, wire
from contracts.codec import decode, encode


def priced_batch(count: int) -> wire.PricedBatch:
    """A priced batch of `count` generated loans, as pricing publishes it."""
    run_id, now = uuid4(), datetime.now(UTC)
    events = priced_events(generated_records(count, run_id), run_id, now)
    params = wire.RunParams(pdate=now.date())
    return wire.PricedBatch(run_id=run_id, batch_seq=0, params=params, events=tuple(events))


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
            "pydantic_encode": cpu_per_loan(lambda: encode(model), count, args.repeat),
            "pydantic_decode": cpu_per_loan(
                lambda: decode(data, loans.PricedBatch), count, args.repeat
            ),
            "msgspec_encode": cpu_per_loan(lambda: encode(batch), count, args.repeat),
            "msgspec_decode": cpu_per_loan(
                lambda: decode(data, wire.PricedBatch), count, args.repeat
            ),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
