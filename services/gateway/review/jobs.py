"""The review jobs, on a clock tests can drive (no sleeping tests), in a process of their own
(`main.py`; inside the API process too with GATEWAY_REVIEW_JOBS_ENABLED).

`open_cases` publishes a `review.case_opened` for every `human_review` loan without a case (see
`opening.py` for why the gateway, not the projector, opens cases), looking only in the scored
batches not yet seen with all their cases (`OpenedBatches`); `record_auto_decisions` one
`review.auto_decisions_recorded` per scored batch whose auto-routed loans lack a decision;
`auto_assign` and `mark_sla` (`sla_jobs.py`) assign cases near their deadline and publish SLA
warnings, breaches and escalations with their notifications; then the notification jobs
(`notifications/jobs.py`) raise override and run notifications and deliver team webhooks.
`ReviewJobs.tick(now)` runs the jobs once at `now`; `run(stop)` ticks every `review_job_seconds`
with the clock (the wall clock unless a test gives its own), webhook delivery in a loop of its own
so that a slow receiver never holds up cases, decisions and SLA marks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.ids import batch_key, event_id
from contracts.reviews import AutoDecision, AutoDecisionsRecorded
from contracts.topics import REVIEWS
from services.gateway import acting
from services.gateway.deps import Publisher
from services.gateway.notifications.jobs import NotificationJobs
from services.gateway.review import repository as repo
from services.gateway.review.opening import ScoredLoan, open_case
from services.gateway.review.service import policy_of, publish_all
from services.gateway.review.sla_jobs import auto_assign, mark_sla
from services.gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)

# Scored batches read per query (~540 case openings, ~640 auto decisions of 500-loan batches):
# their rows become objects and events without a pause of the event loop the API serves on,
# ~10-20 ms (at 10 and 50 batches a query, requests waited 100-340 ms at every tick).
OPEN_BATCHES = 3
AUTO_BATCHES = 2
Clock = Callable[[], datetime]
T = TypeVar("T")


def wall_clock() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


def _itself(item: Any) -> Hashable:
    return item


class RecentlyPublished:
    """What a job published that the read models may not show yet, for `hold` seconds.

    Until the projector folds a case's opening (or a batch's auto decisions), the loan still
    looks unopened. Publishing it again on every tick is harmless for the fold (same ids) but
    not for a projector that lags: each tick would publish its whole backlog again, and the
    duplicates lag it further. So a job publishes a key once per `hold`; should the event be
    lost, the next publish after `hold` repairs it, and a restarted gateway starts afresh.
    A hold of 0 remembers nothing: everything is published every time.
    """

    def __init__(self, hold: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold = hold
        self.clock = clock
        self._published: dict[Hashable, float] = {}  # in the order published: oldest first

    def fresh(self, items: Iterable[T], key: Callable[[T], Hashable] = _itself) -> list[T]:
        """The items whose key was not published within the last `hold` seconds."""
        now = self.clock()
        while self._published:
            oldest, at = next(iter(self._published.items()))
            if now - at < self.hold:
                break
            del self._published[oldest]
        return [item for item in items if key(item) not in self._published]

    def remember(self, items: Iterable[T], key: Callable[[T], Hashable] = _itself) -> None:
        """These items were published just now."""
        now = self.clock()
        for item in items:
            self._published[key(item)] = now


class OpenedBatches:
    """The scored batches whose every `human_review` loan was seen with its case.

    Cases are never removed from the read models but by a rebuild, so such a batch needs no
    second look: `open_cases` reads only the others, and a tick with every case opened reads
    a few thousand batch rows instead of every scored loan. A batch is known by its version
    (see `repo.review_batches`): one delivered or scored again is read again. What the set
    cannot see is a case lost from the read models any other way, or its opening lost on the
    way; a restarted gateway starts with an empty set and reads every batch once, which
    repairs both (as it always did). A rebuild empties the set: `reset(generation)` with
    another generation than the set was filled in forgets it.
    """

    def __init__(self) -> None:
        self.generation: int | None = None
        self._batches: set[Hashable] = set()

    def reset(self, generation: int | None) -> None:
        """Forget every batch unless the read models are still of `generation`."""
        if generation is None or generation != self.generation:
            self._batches.clear()
        self.generation = generation

    def unknown(self, batches: list[Any]) -> list[Any]:
        """The batches not known opened (and the known ones not listed any more forgotten)."""
        self._batches.intersection_update(_versioned(batch) for batch in batches)
        return [batch for batch in batches if _versioned(batch) not in self._batches]

    def add(self, batches: Iterable[Any]) -> None:
        """These batches were read with no loan lacking its case."""
        self._batches.update(_versioned(batch) for batch in batches)


async def open_cases(
    session: AsyncSession,
    publisher: Publisher,
    settings: GatewaySettings,
    now: datetime,
    batches: int = OPEN_BATCHES,
    recent: RecentlyPublished | None = None,
    opened: OpenedBatches | None = None,
) -> int:
    """Open a case for every `human_review` loan that has none; return how many.

    The scored batches holding human reviews are listed (run by run, each run's in order), those
    `opened` knows or `recent` holds are skipped, and the others read `batches` at a time for
    their loans without a case; a batch with none joins `opened`, one with some is held by
    `recent` (and so is each loan published). A loan published twice (by another gateway, or a
    tick after `recent` forgot it) is one case: the ids are the same.
    """
    recent = recent or RecentlyPublished(hold=0)
    opened = opened if opened is not None else OpenedBatches()
    listed = await repo.review_batches(session)
    await session.commit()
    due = recent.fresh(opened.unknown(listed), key=_held)
    published: set[UUID] = set()
    policy = policy_of(settings)
    for start in range(0, len(due), batches):
        chunk = due[start : start + batches]
        rows = await repo.unopened_reviews(session, chunk)
        await session.commit()
        lacking = {_batch(row) for row in rows}
        opened.add(batch for batch in chunk if _batch(batch) not in lacking)
        # A loan sent again in another batch lies in both batches' ranges: published once.
        todo = {
            row.loan_id: row
            for row in recent.fresh(rows, key=_loan_id)
            if row.loan_id not in published
        }
        # Built lazily, a publishing slice at a time: the API's requests are served between.
        openings = (open_case(_scored(row), policy, now) for row in todo.values())
        await publish_all(publisher, openings)
        recent.remember(todo.values(), key=_loan_id)
        # Until the projector folds their openings, the batches read with loans lacking a case
        # would show the same loans on every tick: they are read again once per hold.
        recent.remember((batch for batch in chunk if _batch(batch) in lacking), key=_held)
        published.update(todo)
    return len(published)


def _batch(row: Any) -> Hashable:
    return (row.run_id, row.batch_seq)


def _versioned(batch: Any) -> Hashable:
    return (batch.run_id, batch.batch_seq, batch.version)


def _held(batch: Any) -> Hashable:
    return ("open", batch.run_id, batch.batch_seq, batch.version)


def _loan_id(row: Any) -> Hashable:
    return row.loan_id


def _batch_key(event: AutoDecisionsRecorded) -> str:
    return batch_key(event.run_id, event.batch_seq)


def _auto_batch(event: AutoDecisionsRecorded) -> Hashable:
    return ("auto", event.run_id, event.batch_seq)


def _scored(row: Any) -> ScoredLoan:
    return ScoredLoan(
        loan_id=row.loan_id,
        run_id=row.run_id,
        seq=row.seq,
        seller_loan_number=row.seller_loan_number,
        model_version=row.model_version,
        score=row.score,
        routing_reason=row.routing_reason,
        loan_amount=row.loan_amount,
        scored_at=row.scored_at,
    )


async def record_auto_decisions(
    session: AsyncSession,
    publisher: Publisher,
    now: datetime,
    recent: RecentlyPublished | None = None,
) -> int:
    """Record the auto decisions of every scored batch that lacks them, AUTO_BATCHES at a time
    (each page after the last batch of the one before, as `open_cases` pages)."""
    recent = recent or RecentlyPublished(hold=0)
    recorded, after = 0, None
    while True:
        rows = await repo.undecided_auto_batches(session, AUTO_BATCHES, after)
        await session.commit()
        events = auto_decisions(rows, now)
        todo = recent.fresh(events, key=_auto_batch)
        await acting.publish_all(publisher, REVIEWS, todo, _batch_key)
        recent.remember(todo, key=_auto_batch)
        recorded += sum(len(event.decisions) for event in todo)
        if len(events) < AUTO_BATCHES:
            return recorded
        after = (events[-1].run_id, events[-1].batch_seq)


def auto_decisions(rows: list[Any], now: datetime) -> list[AutoDecisionsRecorded]:
    """One event per scored batch, with every auto-routed loan of it in tape order."""
    by_batch: dict[tuple[UUID, int], list[AutoDecision]] = {}
    for row in rows:
        by_batch.setdefault((row.run_id, row.batch_seq), []).append(
            AutoDecision(
                loan_id=row.loan_id,
                seq=row.seq,
                decision_type=row.routing_decision,
                score=row.score,
            )
        )
    return [
        AutoDecisionsRecorded(
            event_id=event_id("review.auto_decisions_recorded", run_id, batch_seq),
            run_id=run_id,
            batch_seq=batch_seq,
            decisions=tuple(decisions),
            occurred_at=now,
        )
        for (run_id, batch_seq), decisions in by_batch.items()
    ]


class ReviewJobs:
    """The review jobs of one process (the jobs process, or an API process that runs them)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        settings: GatewaySettings,
        clock: Clock = wall_clock,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.publisher = publisher
        self.settings = settings
        self.clock = clock
        self.notifications = NotificationJobs(sessionmaker, publisher, settings)
        self.waiting_for_replay = False
        self.recent = RecentlyPublished(settings.review_republish_seconds)
        self.opened = OpenedBatches()

    async def tick(self, now: datetime | None = None) -> int:
        """Run every job once at `now` (the clock's time by default); return cases opened."""
        at = now or self.clock()
        opened = await self.tick_cases(at)
        await self.notifications.deliver(at)
        return opened

    async def tick_cases(self, at: datetime) -> int:
        """Every job but webhook delivery once at `at`; the cases opened.

        None while the projector replays the log: read models still filling would show
        scored loans without their cases, decisions and SLA marks, and the jobs would publish
        them all again (and mark cases that were decided long ago).
        """
        async with self.sessionmaker() as session:
            state = await repo.projection_state(session)
            replaying = state.replaying
            # Read models replayed (or rebuilt since the last tick) may lack cases seen before.
            self.opened.reset(None if replaying else state.generation)
            if replaying != self.waiting_for_replay:
                self.waiting_for_replay = replaying
                logger.info(
                    "review jobs "
                    + ("wait: the read models are replayed" if replaying else "resume")
                )
            if replaying:
                return 0
            opened = await open_cases(
                session, self.publisher, self.settings, at, recent=self.recent, opened=self.opened
            )
            await record_auto_decisions(session, self.publisher, at, self.recent)
            await auto_assign(session, self.publisher, self.settings, at)
            await mark_sla(session, self.publisher, self.settings, at)
        await self.notifications.raise_owed(at)
        return opened

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every `review_job_seconds` until `stop` is set, webhook delivery in a loop of its
        own (a slow or dead receiver must not hold up cases, decisions and SLA marks)."""

        async def cases() -> None:
            opened = await self.tick_cases(self.clock())
            if opened:
                logger.info("review cases opened", extra={"opened": opened})

        async def webhooks() -> None:
            # A stop abandons the POSTs in flight (their deliveries stay pending): a receiver
            # that never answers must not hold the process past its supervisor's stop timeout.
            await self.notifications.deliver(self.clock(), stop)

        await asyncio.gather(self._every_tick(cases, stop), self._every_tick(webhooks, stop))

    async def _every_tick(self, job: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
        """Run `job` every `review_job_seconds` until `stop` is set; a failed run is logged."""
        while not stop.is_set():
            try:
                await job()
            except Exception as error:  # the next tick retries; the process keeps going
                logger.warning("review jobs failed", extra={"error": type(error).__name__})
            try:
                await asyncio.wait_for(stop.wait(), self.settings.review_job_seconds)
            except TimeoutError:
                continue
