"""Scoring throughput, loans/s per core: what the scoring handler does to one batch, timed.

    .venv/bin/python benchmarks/scoring.py --loans 50000

A generated tape (`tape generate`'s realistic mix, bad rows included) goes through ingest's
normaliser, rules, pricing and disposition into encoded dispositioned batches of LOAN_BATCH_SIZE
loans. The model is trained in-process on the service's bootstrap history (no MLflow). Then each
batch is decoded, scored (features, one preprocessing transform, one XGBoost TreeSHAP call,
routing and factors) and encoded, as `on_loans_dispositioned` does; CPU time (process_time) per
stage gives loans/s per core. It also reports the largest feature PSI of the tape against the
training data (generated tapes should not drift). On a shared, loaded machine the numbers are
indicative only.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

from contracts.codec import decode, encode
from contracts.drift import add_counts, bin_counts, drift, empty_counts
from contracts.ids import event_id
from contracts.loans import DispositionedBatch, LoanDispositioned, RunParams
from services.ingest.domain import InMemoryDuplicateIndex, Normaliser
from services.ingest.readers import read_rows
from services.ingest.tapegen import generate_tape
from services.pricing.domain import price
from services.reporting.domain import disposition
from services.rules.domain import evaluate, load_rule_set
from services.scoring.batches import scored_batch
from services.scoring.domain import features_of, load_policy
from services.scoring.history import synthetic_history
from services.scoring.model import train
from services.scoring.settings import ScoringSettings

IRR_TARGET = Decimal("8.05")


def dispositioned_batches(loans: int, seed: int, batch_size: int) -> list[bytes]:
    """A generated tape's loans as encoded dispositioned batches."""
    rule_set = load_rule_set()
    run_id = uuid4()
    now = datetime.now(UTC)
    params = RunParams(irr_target=IRR_TARGET, pdate=now.date())
    with tempfile.TemporaryDirectory() as tmp:
        tape = Path(tmp) / "tape.csv"
        generate_tape(tape, loans, seed)
        normaliser = Normaliser(run_id, InMemoryDuplicateIndex())
        events = []
        with tape.open("rb") as stream:
            for record in normaliser.file(tape.name, read_rows(tape.name, stream)):
                evaluation = evaluate(record, rule_set)
                pricing = price(evaluation.exceptions, record.fields.note_rate, IRR_TARGET)
                events.append(
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
    return [
        encode(
            DispositionedBatch(
                run_id=run_id,
                batch_seq=number,
                params=params,
                events=tuple(events[start : start + batch_size]),
            )
        )
        for number, start in enumerate(range(0, len(events), batch_size))
    ]


def main() -> None:
    """Time the scoring handler's work over a generated tape and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    settings = ScoringSettings()
    started = time.perf_counter()
    history = synthetic_history(settings.bootstrap_samples, settings.bootstrap_seed)
    model = train(history, settings.bootstrap_seed, datetime.now(UTC), folds=2)
    served = model.served(settings.model_name, "benchmark")
    train_seconds = time.perf_counter() - started
    batches = dispositioned_batches(args.loans, args.seed, args.batch_size)
    policy = load_policy()
    loans = 0
    counts = empty_counts(served.card)
    cpu = {"decode": 0.0, "features": 0.0, "score": 0.0, "encode": 0.0}
    gc.collect()
    gc.freeze()
    wall = time.perf_counter()
    for body in batches:
        t0 = time.process_time()
        batch = decode(body, DispositionedBatch)
        t1 = time.process_time()
        for event in batch.events:  # features alone, to show their share (scored_batch redoes it)
            features_of(event.loan)
        t2 = time.process_time()
        output = scored_batch(batch, served.scorer, "benchmark", policy)
        t3 = time.process_time()
        encode(output)
        t4 = time.process_time()
        counts = add_counts(counts, bin_counts(served.card, output.features()))
        cpu["decode"] += t1 - t0
        cpu["features"] += t2 - t1
        cpu["score"] += t3 - t2
        cpu["encode"] += t4 - t3
        loans += len(batch.events)
    wall_seconds = time.perf_counter() - wall
    handler_cpu = cpu["decode"] + cpu["score"] + cpu["encode"]
    result = {
        "loans": loans,
        "batches": len(batches),
        "loans_per_cpu_second": round(loans / handler_cpu),
        "us_per_loan": {
            "decode": round(1e6 * cpu["decode"] / loans, 1),
            "features (inside score)": round(1e6 * cpu["features"] / loans, 1),
            "score_and_route": round(1e6 * cpu["score"] / loans, 1),
            "encode": round(1e6 * cpu["encode"] / loans, 1),
        },
        "wall_seconds": round(wall_seconds, 2),
        "max_feature_psi": max((item.psi for item in drift(served.card, counts)), key=float),
        "model_training_seconds": round(train_seconds, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
