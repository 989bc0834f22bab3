"""Reporting's credit-review use cases (SPEC §8): learn every loan's decision from reviews.v1 and,
once every loan of a completed run has a final one, write the decision tape and decide the run.

Decisions come from the log alone: the machine's from `review.auto_decisions_recorded` (one per
scored batch), a person's from the case events, folded with the lifecycle rules the gateway folds
with (`contracts.review_fold`), so an action the gateway's fold refuses is refused here too. An
override counts once a second person approved it; a rejected one takes the loan's decision away
until the analyst decides again. A run is ready when it completed (its `run.completed`) and its
final decisions number its loans; either may come last, so both paths call `decide_if_ready`,
under an advisory lock, and `mark_decided` makes it happen once.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.ids import event_id
from contracts.reviews import (
    AnyReviewEvent,
    AutoDecisionsRecorded,
    ReviewDecisionRecorded,
    ReviewEvent,
    ReviewOverrideApproved,
)
from contracts.runs import DECISION_TAPE, DecisionCounts, ReportFile, RunCompleted, RunDecided
from contracts.topics import RUNS
from services.common.logs import log_context
from services.common.storage import Storage, sha256_file
from services.reporting.decision_repository import DecisionRepository
from services.reporting.decision_tape import header, tape_row
from services.reporting.domain import fold_reviews
from services.reporting.locks import run_lock
from services.reporting.service import PRODUCER, EventPublisher
from services.reporting.settings import ReportingSettings

logger = logging.getLogger(__name__)

# Events after which a run may have every decision it needs.
FINALISING = (AutoDecisionsRecorded, ReviewDecisionRecorded, ReviewOverrideApproved)


def decision_tape_key(run_id: UUID) -> str:
    """Where the decision tape is stored."""
    return f"outputs/{run_id}/{DECISION_TAPE}.csv"


def archived_decision_tape_key(run_id: UUID) -> str:
    """Where the decision tape is archived, beside the four reports."""
    return f"archive/{run_id}/output/{DECISION_TAPE}.csv"


class DecisionService:
    """Decisions in, decision tapes and `run.decided` out."""

    def __init__(
        self,
        settings: ReportingSettings,
        engine: AsyncEngine,
        storage: Storage,
        publisher: EventPublisher,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.storage = storage
        self.publisher = publisher
        self.clock = clock

    async def on_review(self, event: AnyReviewEvent) -> None:
        """Apply one review event (once); decide its run if that was the last decision."""
        await self.on_reviews((event,))

    async def on_reviews(self, events: Sequence[AnyReviewEvent]) -> None:
        """Apply a batch of review events (each once, in log order) in one transaction; then
        decide each run a finalising event of the batch belongs to, if it is ready."""
        if not events:
            return
        async with self.engine.begin() as connection:
            repository = DecisionRepository(connection)
            claimed = await repository.claim_events(event.event_id for event in events)
            fresh: list[AnyReviewEvent] = []
            for event in events:
                if event.event_id in claimed:
                    claimed.discard(event.event_id)  # a second copy in the batch is a redelivery
                    fresh.append(event)
            cases = [event.case_id for event in fresh if isinstance(event, ReviewEvent)]
            folded = fold_reviews(await repository.case_states(cases), fresh)
            for refusal in folded.refused:
                # The gateway's fold refuses it the same way: it never happened.
                refused = {"event": type(refusal.event).__name__, "why": refusal.why}
                logger.info("review event refused", extra=refused)
            await repository.save_cases(folded.cases.values())
            await repository.apply_decisions(folded.writes)
        # Also when an event was seen before: deciding may have failed after it was applied.
        for run_id in dict.fromkeys(e.run_id for e in events if isinstance(e, FINALISING)):
            await self.decide_if_ready(run_id)

    async def on_run_completed(self, event: RunCompleted) -> None:
        """Remember the completed run's loan count; decide it if every decision is in."""
        async with self.engine.begin() as connection:
            await DecisionRepository(connection).record_completed(event.run_id, event.total_loans)
        await self.decide_if_ready(event.run_id)

    async def decide_if_ready(self, run_id: UUID) -> bool:
        """Decide the run when it is ready; True when this call decided it."""
        async with self.engine.connect() as connection:
            readiness = await DecisionRepository(connection).readiness(run_id)
        if not readiness.ready:
            return False
        with log_context(run_id=str(run_id)):
            async with run_lock(self.engine, run_id, "decide") as held:
                return held and await self._decide(run_id)

    async def _decide(self, run_id: UUID) -> bool:
        async with self.engine.connect() as connection:
            repository = DecisionRepository(connection)
            if not (await repository.readiness(run_id)).ready:
                return False  # another process decided it first
            counts, last = await repository.decision_counts(run_id)
        decisions = DecisionCounts(**counts)
        report = await self._write_tape(run_id)
        archived = archived_decision_tape_key(run_id)
        await self.storage.copy(report.storage_key, archived)
        decided_at = last or self.clock()
        event = RunDecided(
            event_id=event_id("run.decided", run_id),
            run_id=run_id,
            occurred_at=self.clock(),
            producer=PRODUCER,
            decisions=decisions,
            bought=report.rows,
            report=report,
            archive_output=archived,
            decided_at=decided_at,
        )
        await self.publisher.publish(RUNS, str(run_id), event)
        async with self.engine.begin() as connection:
            decided = await DecisionRepository(connection).mark_decided(run_id, decided_at)
        logger.info("run decided", extra={"bought": report.rows, "first": decided})
        return decided

    async def _write_tape(self, run_id: UUID) -> ReportFile:
        """Stream the run's bought loans into `decision_tape.csv` and store it."""
        if self.settings.work_dir is not None:
            self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        rows = 0
        with tempfile.TemporaryDirectory(dir=self.settings.work_dir) as directory:
            path = Path(directory) / f"{DECISION_TAPE}.csv"
            with path.open("wb") as sink:
                sink.write(header().encode())
                async with self.engine.connect() as connection:
                    stream = DecisionRepository(connection).stream_bought(
                        run_id, self.settings.stream_chunk
                    )
                    async for chunk in stream:
                        text = "".join(tape_row(row, decision) for row, decision in chunk)
                        sink.write(text.encode())
                        rows += len(chunk)
            key = decision_tape_key(run_id)
            digest = await asyncio.to_thread(sha256_file, path)
            size = path.stat().st_size
            await self.storage.put_file(key, path)
        return ReportFile(
            key=DECISION_TAPE,
            uri=self.storage.uri(key),
            storage_key=key,
            sha256=digest,
            size=size,
            rows=rows,
        )
