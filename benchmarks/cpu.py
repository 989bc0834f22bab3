"""What the in-process CPU benchmarks (`codec.py`, `hops.py`, `ends.py`) share: the generated
tape's loans as each stage sees them, and a CPU clock per loan."""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from contracts import wire
from contracts.ids import event_id
from contracts.numbers import DEFAULT_IRR_TARGET
from services.ingest.domain import InMemoryDuplicateIndex, Normaliser
from services.ingest.readers import read_rows
from services.ingest.tapegen import generate_tape
from services.pricing.domain import price
from services.rules.domain import evaluate, load_rule_set


def generated_records(
    count: int, run_id: UUID, bad_share: float = 0.05, seed: int = 11
) -> list[wire.LoanRecord]:
    """The loan records ingest makes of a generated tape of `count` rows."""
    with tempfile.TemporaryDirectory() as folder:
        tape = Path(folder) / "tape.csv"
        generate_tape(tape, count, seed=seed, bad_share=bad_share)
        with tape.open("rb") as stream:
            normaliser = Normaliser(run_id, InMemoryDuplicateIndex())
            return list(normaliser.file(tape.name, read_rows(tape.name, stream)))


def priced_events(
    records: Iterable[wire.LoanRecord], run_id: UUID, now: datetime
) -> list[wire.LoanPriced]:
    """Each record evaluated with the default rule set and priced, as pricing publishes it."""
    rule_set = load_rule_set()
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
    return events


def cpu_per_loan(operation: Callable[[], Any], loans: int, repeat: int) -> float:
    """Best CPU microseconds per loan of `operation` over `repeat` runs.

    The cyclic collector is paused while timing, as the services pause it around a batch's work:
    its passes land wherever the heap's growth puts them and would swamp the differences.
    """
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            started = time.process_time()
            operation()
            best = min(best, time.process_time() - started)
        finally:
            gc.enable()
    return round(best / loans * 1e6, 2)
