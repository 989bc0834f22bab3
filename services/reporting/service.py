"""Reporting's use cases: disposition each priced batch, track runs, complete each run once.

A run completes when every ingested loan is dispositioned. That is seen either on the last priced
batch or on the tape-ingested event, whichever comes second, so both paths call
`complete_if_ready`. A PostgreSQL advisory lock serialises completers of one run (across
processes too, and released by the server if the holder dies), and the conditional
`mark_completed` makes the completion happen once however often it is observed.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar, cast
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.codec import loads
from contracts.ids import event_id, event_ids
from contracts.loans import Disposition
from contracts.runs import (
    REPORT_KEYS,
    OutputsWritten,
    Phase,
    ReportFile,
    ReportKey,
    RunCompleted,
    RunFailed,
    RunRetryRequested,
    RunStarted,
    TapeIngested,
)
from contracts.topics import LOANS_DISPOSITIONED, RUNS, Topic
from contracts.wire import DispositionedBatch, LoanDispositioned, LoanPriced, PricedBatch
from services.common.consumer import RetryPolicy, gc_paused, is_transient, retry_transient
from services.common.logs import log_context
from services.common.metrics import record_dispositions, record_run
from services.common.storage import Storage, sha256_file
from services.reporting.domain import RunTotals, disposition
from services.reporting.errors import InconsistentRun, OutputUnavailable
from services.reporting.locks import run_lock
from services.reporting.reports import RenderedLoan, ReportWriter, render_all
from services.reporting.repository import (
    LoansAlreadyStored,
    ReportingRepository,
    RunState,
    StoredLoan,
)
from services.reporting.settings import ReportingSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")
ReportPaths = dict[ReportKey, Path]
PRODUCER = "reporting"
RETRYABLE_PHASES: frozenset[Phase] = frozenset({"output", "archive"})
# Storage that refuses writes for now: an operator can fix it (permissions, a read-only or full
# volume), so writing outputs is retried as for an outage, and the run fails only if it lasts.
STORAGE_REFUSALS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT})


def output_retryable(error: BaseException) -> bool:
    """Whether writing outputs may succeed later: a dependency is down or storage refuses."""
    return is_transient(error) or (isinstance(error, OSError) and error.errno in STORAGE_REFUSALS)


class EventPublisher(Protocol):
    """What reporting publishes through (`KafkaPublisher` or `runtime.BrokerPublisher`)."""

    async def publish(
        self, topic: Topic, key: str, event: BaseModel, headers: Any = None
    ) -> None: ...

    async def publish_batch(self, topic: Topic, batch: Any, headers: Any = None) -> None: ...


def dispositioned(event: LoanPriced, now: datetime, id_: UUID) -> LoanDispositioned:
    """One loan's final event: its priced facts plus its disposition (SPEC §3.6); `id_` is
    `event_id("loan.dispositioned", run_id, loan_id)`."""
    return LoanDispositioned(
        event_id=id_,
        run_id=event.run_id,
        occurred_at=now,
        producer=PRODUCER,
        loan=event.loan,
        exceptions=event.exceptions,
        quality=event.quality,
        rule_set_version=event.rule_set_version,
        pricing=event.pricing,
        disposition=disposition(event.exceptions, event.pricing),
    )


def dispositioned_batch(batch: PricedBatch, now: datetime) -> DispositionedBatch:
    """The dispositioned batch: same run, number and parameters, loans in the same order."""
    events = batch.events
    # The batch's ids in one pass (one text encoding of its UUIDs, not one str() a loan).
    ids = event_ids(
        "loan.dispositioned", [event.run_id for event in events], [e.loan.loan_id for e in events]
    )
    return DispositionedBatch(
        run_id=batch.run_id,
        batch_seq=batch.batch_seq,
        params=batch.params,
        events=tuple(
            dispositioned(event, now, id_) for event, id_ in zip(events, ids, strict=True)
        ),
    )


def output_key(run_id: UUID, key: ReportKey) -> str:
    """Where a report is stored."""
    return f"outputs/{run_id}/{key}.csv"


def archive_output_key(run_id: UUID, key: ReportKey) -> str:
    """Where a report is archived."""
    return f"archive/{run_id}/output/{key}.csv"


@contextmanager
def report_files(
    directory: Path,
) -> Iterator[tuple[dict[ReportKey, Path], dict[ReportKey, BinaryIO]]]:
    """The four report files of a run, open for writing in `directory`."""
    paths = {key: directory / f"{key}.csv" for key in REPORT_KEYS}
    with ExitStack() as stack:
        yield paths, {key: stack.enter_context(paths[key].open("wb")) for key in REPORT_KEYS}


def write_chunk(writer: ReportWriter, totals: RunTotals, chunk: Sequence[StoredLoan]) -> None:
    """Feed a chunk of stored loans, in tape order, to the reports and the run's totals."""
    with gc_paused():
        for seq, stored_disposition, text, stored_exceptions in chunk:
            disposition = cast(Disposition, stored_disposition)
            exceptions = () if stored_exceptions is None else loads(stored_exceptions)
            writer.add_text(seq, disposition, text, exceptions)
            totals.count(disposition, len(exceptions))


async def write_streamed(
    stream: AsyncIterator[Sequence[StoredLoan]], writer: ReportWriter, totals: RunTotals
) -> None:
    """Write every chunk in order, fetching the next one while a thread writes the last.

    Writing is CPU work in a thread (/health keeps answering); meanwhile the database sends the
    next chunk, so the tail after a run's last batch is the longer of the two, not their sum.
    """
    writing: asyncio.Future[None] | None = None
    try:
        async for chunk in stream:
            if writing is not None:
                await writing
            writing = asyncio.ensure_future(asyncio.to_thread(write_chunk, writer, totals, chunk))
        if writing is not None:
            await writing
            writing = None
    finally:
        if writing is not None:
            # The stream failed mid-write: let the thread finish before the files close.
            await asyncio.gather(writing, return_exceptions=True)


class ReportingService:
    """Reporting's use cases over its tables, storage and publisher."""

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
        self.output_policy = RetryPolicy(
            transient_attempts=settings.output_attempts,
            base_seconds=settings.output_backoff_seconds,
        )

    async def on_priced(self, batch: PricedBatch) -> None:
        """Disposition, store and publish a priced batch; complete its run when every loan is in."""
        with gc_paused():
            output = dispositioned_batch(batch, self.clock())
            rendered = render_all(output.events)
        # Storing and publishing wait on different servers, so they wait together. Both are
        # idempotent: if either fails the batch is redelivered and both are done again, and the
        # run completes only after both succeeded for its last batch.
        state, _ = await asyncio.gather(
            self._add_loans(batch.run_id, rendered),
            self.publisher.publish_batch(LOANS_DISPOSITIONED, output),
        )
        record_dispositions(event.disposition for event in output.events)
        await self.complete_if_ready(state)

    async def _add_loans(self, run_id: UUID, rendered: list[RenderedLoan]) -> RunState:
        """Store the batch's loans: all new, as on every first delivery; else (a redelivery, a
        loan stored before) again skipping those stored, in a transaction of its own."""
        try:
            async with self.engine.begin() as connection:
                return await ReportingRepository(connection).add_new_loans(run_id, rendered)
        except LoansAlreadyStored:
            logger.info("batch stored before, storing only its new loans")
        async with self.engine.begin() as connection:
            return await ReportingRepository(connection).add_loans(run_id, rendered)

    async def on_run_started(self, event: RunStarted) -> None:
        """Track the run from its start."""
        async with self.engine.begin() as connection:
            await ReportingRepository(connection).record_started(event)

    async def on_tape_ingested(self, event: TapeIngested) -> None:
        """Record the run's final counts; complete it if every loan is already dispositioned."""
        async with self.engine.begin() as connection:
            state = await ReportingRepository(connection).record_ingested(event)
        await self.complete_if_ready(state)

    async def on_run_failed(self, event: RunFailed) -> None:
        """Remember that the run failed (unless it has completed)."""
        async with self.engine.begin() as connection:
            await ReportingRepository(connection).record_failed(event)

    async def on_retry_requested(self, event: RunRetryRequested) -> None:
        """Redo a run's output or archive phase; other phases are ingest's to retry."""
        if event.phase not in RETRYABLE_PHASES:
            return
        async with self.engine.begin() as connection:
            state = await ReportingRepository(connection).record_retry(event.run_id, event.attempt)
        if state is not None:
            await self.complete_if_ready(state)

    async def complete_if_ready(self, state: RunState) -> bool:
        """Complete the run when every loan is dispositioned; True when this call completed it."""
        if not state.ready:
            return False
        with log_context(run_id=str(state.run_id)):
            async with run_lock(self.engine, state.run_id, "complete") as held:
                return held and await self._complete(state.run_id)

    async def _complete(self, run_id: UUID) -> bool:
        async with self.engine.connect() as connection:
            state = await ReportingRepository(connection).get(run_id)
        if state is None or not state.ready:
            # Another completer finished first, or the counts moved on: nothing to do.
            return False
        written = await self._attempt(state, "output", lambda: self._write_reports(state))
        if written is None:
            return False
        archived = await self._attempt(state, "archive", lambda: self._archive(run_id))
        if archived is None:
            return False
        await self._publish_completion(state, *written, *archived)
        async with self.engine.begin() as connection:
            completed = await ReportingRepository(connection).mark_completed(run_id, self.clock())
        logger.info("run completed", extra={"loans": state.total_loans, "first": completed})
        if completed:
            record_run("completed", self._run_seconds(state))
        return completed

    async def _attempt(
        self, state: RunState, phase: Phase, operation: Callable[[], Awaitable[T]]
    ) -> T | None:
        """Run one phase, retrying transient faults; when they persist the run fails (None)."""
        try:
            return await retry_transient(
                operation, self.output_policy, self._log_retry, retryable=output_retryable
            )
        except Exception as error:
            if not output_retryable(error):
                raise
            await self._fail(state, phase, error)
            return None

    async def _write_reports(self, state: RunState) -> tuple[tuple[ReportFile, ...], RunTotals]:
        """Stream the run's loans in tape order into the four reports and store them."""
        run_id = state.run_id
        if self.settings.work_dir is not None:
            self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.settings.work_dir) as directory:
            with report_files(Path(directory)) as (paths, sinks):
                writer, totals = ReportWriter(sinks), RunTotals()
                async with self.engine.connect() as connection:
                    stream = ReportingRepository(connection).stream_loans(
                        run_id, self.settings.stream_chunk
                    )
                    await write_streamed(stream, writer, totals)
                rows = writer.finish()
            if totals.total_loans != state.total_loans:
                raise InconsistentRun(
                    f"run {run_id} stores {totals.total_loans} loans, expected {state.total_loans}"
                )
            reports = [await self._store(run_id, key, paths[key], rows[key]) for key in REPORT_KEYS]
        return tuple(reports), totals

    async def _store(self, run_id: UUID, key: ReportKey, path: Path, rows: int) -> ReportFile:
        storage_key = output_key(run_id, key)
        digest = await asyncio.to_thread(sha256_file, path)
        await self.storage.put_file(storage_key, path)
        return ReportFile(
            key=key,
            uri=self.storage.uri(storage_key),
            storage_key=storage_key,
            sha256=digest,
            size=path.stat().st_size,
            rows=rows,
        )

    async def _archive(self, run_id: UUID) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Copy the reports to the run's archive; list the inputs ingest archived there."""
        for key in REPORT_KEYS:
            await self.storage.copy(output_key(run_id, key), archive_output_key(run_id, key))
        inputs = await self.storage.list(f"archive/{run_id}/input")
        outputs = tuple(archive_output_key(run_id, key) for key in REPORT_KEYS)
        return tuple(item.key for item in inputs), outputs

    async def _publish_completion(
        self,
        state: RunState,
        reports: tuple[ReportFile, ...],
        totals: RunTotals,
        archive_input: tuple[str, ...],
        archive_output: tuple[str, ...],
    ) -> None:
        run_id, now = state.run_id, self.clock()
        envelope = {"run_id": run_id, "occurred_at": now, "producer": PRODUCER}
        written = OutputsWritten(
            event_id=event_id("run.outputs_written", run_id),
            reports=reports,
            archive_input=archive_input,
            archive_output=archive_output,
            **envelope,
        )
        completed = RunCompleted(
            event_id=event_id("run.completed", run_id),
            total_loans=totals.total_loans,
            total_balance=state.balance,
            exceptions_count=totals.exceptions_count,
            dispositions=totals.dispositions(),
            reports=reports,
            completed_at=now,
            **envelope,
        )
        await self.publisher.publish(RUNS, str(run_id), written)
        await self.publisher.publish(RUNS, str(run_id), completed)

    async def _fail(self, state: RunState, phase: Phase, error: BaseException) -> None:
        failure = OutputUnavailable(phase, error)
        event = RunFailed(
            event_id=event_id("run.failed", state.run_id, phase, state.attempt),
            run_id=state.run_id,
            occurred_at=self.clock(),
            producer=PRODUCER,
            phase=phase,
            error=str(failure),
            attempt=state.attempt,
        )
        async with self.engine.begin() as connection:
            await ReportingRepository(connection).record_failed(event)
        await self.publisher.publish(RUNS, str(state.run_id), event)
        record_run("failed", self._run_seconds(state))
        logger.error("run failed", extra={"phase": phase, "error": str(failure)})

    def _run_seconds(self, state: RunState) -> float | None:
        """Seconds since the run was created, when reporting saw its start."""
        if state.created_at is None:
            return None
        return (self.clock() - state.created_at).total_seconds()

    @staticmethod
    def _log_retry(attempt: int, error: BaseException) -> None:
        logger.warning(
            "writing outputs failed, retrying",
            extra={"attempt": attempt, "error": f"{type(error).__name__}: {error}"},
        )
