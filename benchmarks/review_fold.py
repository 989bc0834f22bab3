"""What folding reviews.v1 costs reporting: events per second one at a time and in batches.

    .venv/bin/python benchmarks/review_fold.py --loans 20000 --batch 500

Builds one run's review events as a scored run makes them: per 500 loans, a `review.case_opened`
for each borderline loan (`--cases`, 17.5 % by default, as measured on generated tapes) and one
`review.auto_decisions_recorded` with the rest. The run is recorded as completed first, so every
batch holding auto decisions asks whether the run is ready (its cases stay open: it never is).
The events are folded through `DecisionService.on_reviews`, the code path of reporting's
reviews.v1 subscriber (no broker: decoding and the consumer are not measured), into a scratch
database of its own on the server of DATABASE_URL, dropped afterwards:

- one at a time: a batch of one per event (what the subscriber did before it took polls);
- batched: `--batch` events per call (what it does with REPORTING_REVIEW_BATCH_RECORDS).

Each mode folds a run of its own. Prints wall seconds, events/s, this process's CPU seconds and
its PostgreSQL backends' (from /proc, when the server runs on this machine). On a shared,
loaded machine wall time is indicative only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.ids import event_id, review_case_id
from contracts.reviews import AnyReviewEvent, AutoDecision, AutoDecisionsRecorded, ReviewCaseOpened
from contracts.runs import Dispositions, RunCompleted
from services.cli.stack import databases
from services.common.db import make_engine, upgrade
from services.common.storage import LocalStorage
from services.reporting.deciding import DecisionService
from services.reporting.settings import ReportingSettings

SCORED_BATCH = 500


class NoPublisher:
    """The run never becomes ready here; anything published would be a mistake."""

    async def publish(self, *_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the benchmark run is never decided")

    async def publish_batch(self, *_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("deciding publishes no loan batches")


def review_events(run_id: UUID, loans: int, cases: float) -> list[AnyReviewEvent]:
    """One run's reviews.v1 events in the order the review job publishes them."""
    now = datetime.now(UTC)
    every = max(round(1 / cases), 1) if cases > 0 else loans + 1
    events: list[AnyReviewEvent] = []
    for batch_seq, start in enumerate(range(1, loans + 1, SCORED_BATCH)):
        autos = []
        for seq in range(start, min(start + SCORED_BATCH, loans + 1)):
            loan_id = uuid.uuid5(run_id, str(seq))
            if seq % every == 0:
                events.append(
                    ReviewCaseOpened(
                        event_id=event_id("review.case_opened", run_id, seq),
                        case_id=review_case_id(loan_id),
                        loan_id=loan_id,
                        run_id=run_id,
                        actor_id=None,
                        actor_role="system",
                        occurred_at=now,
                        seq=seq,
                        seller_loan_number=f"L{seq:07d}",
                        model_version="1",
                        score=500 + seq % 100,
                        routing_reason="borderline_score",
                        loan_amount="250000",
                        scored_at=now,
                        priority_score=seq % 100,
                        priority="medium",
                        sla_deadline=now + timedelta(hours=8),
                    )
                )
            else:
                autos.append(
                    AutoDecision(
                        loan_id=loan_id,
                        seq=seq,
                        decision_type="auto_approve" if seq % 2 else "auto_decline",
                        score=900 if seq % 2 else 100,
                    )
                )
        events.append(
            AutoDecisionsRecorded(
                event_id=event_id("review.auto_decisions_recorded", run_id, batch_seq),
                run_id=run_id,
                batch_seq=batch_seq,
                decisions=tuple(autos),
                occurred_at=now,
            )
        )
    return events


def cpu_of(pid: int) -> float | None:
    """CPU seconds of a local process from /proc (None when it is not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def backend_pids(engine: AsyncEngine) -> list[int]:
    """The server processes of this database's connections."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        return [int(row[0]) for row in rows]


async def fold(
    service: DecisionService, engine: AsyncEngine, events: Sequence[AnyReviewEvent], size: int
) -> dict[str, float | None]:
    """Fold `events` `size` at a time; wall and CPU seconds."""
    pids = await backend_pids(engine)
    backends_before = [cpu_of(pid) for pid in pids]
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    for start in range(0, len(events), size):
        await service.on_reviews(events[start : start + size])
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    after = [cpu_of(pid) for pid in pids]
    backend: float | None = 0.0
    for before, now in zip(backends_before, after, strict=True):
        backend = (
            None if backend is None or before is None or now is None else backend + now - before
        )
    return {"wall": wall, "cpu": cpu, "backend": backend}


async def main(loans: int, cases: float, batch: int) -> None:
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        raise SystemExit("DATABASE_URL must name a PostgreSQL server that allows CREATE DATABASE")
    name = f"bench_review_fold_{uuid4().hex[:10]}"
    url = await databases.create_database(server_url, name)
    try:
        settings = ReportingSettings(database_url=url)
        engine = make_engine(settings, pool_size=1)
        try:
            await upgrade(engine, "reporting")
            with tempfile.TemporaryDirectory() as directory:
                storage = LocalStorage(Path(directory))
                clock = lambda: datetime.now(UTC)  # noqa: E731
                service = DecisionService(settings, engine, storage, NoPublisher(), clock)
                print(f"{loans} loans, {cases:.1%} of them review cases, one run per mode")
                for label, size in (("one at a time", 1), (f"batches of {batch}", batch)):
                    run_id = uuid4()
                    completed = RunCompleted(
                        event_id=event_id("run.completed", run_id),
                        run_id=run_id,
                        occurred_at=clock(),
                        producer="reporting",
                        total_loans=loans,
                        total_balance=Decimal(0),
                        exceptions_count=0,
                        dispositions=Dispositions(to_purchase=loans, projected=0, rejected=0),
                        reports=(),
                        completed_at=clock(),
                    )
                    await service.on_run_completed(completed)
                    events = review_events(run_id, loans, cases)
                    took = await fold(service, engine, events, size)
                    wall = float(took["wall"] or 0)
                    backend = took["backend"]
                    print(
                        f"{label:>18}: {len(events):>7} events in {wall:7.2f} s = "
                        f"{len(events) / wall:9.0f} events/s, "
                        f"{1000 * wall / len(events):6.3f} ms/event; "
                        f"CPU {took['cpu']:.2f} s here"
                        + ("" if backend is None else f", {backend:.2f} s in PostgreSQL")
                    )
        finally:
            await engine.dispose()
    finally:
        await databases.drop_database(server_url, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=20_000)
    parser.add_argument("--cases", type=float, default=0.175, help="share of loans in review")
    parser.add_argument("--batch", type=int, default=500, help="events per batch")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.loans, arguments.cases, arguments.batch))
