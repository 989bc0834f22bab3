"""Ingest's use cases: a run over stored files or a producer's spooled tape, to loan batches.

Every event id is deterministic (`contracts.ids.event_id`), so handling the same request or end
marker again re-publishes the same facts and downstream consumers drop the repeats. Loans stream:
one file (or the spool) is read row by row and published batch by batch with a bounded number of
batches in flight, so memory does not grow with the tape.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from pydantic import BaseModel

from contracts import wire
from contracts.ids import event_id, tape_run_id
from contracts.loans import RunParams
from contracts.runs import (
    RunFailed,
    RunReprocessRequested,
    RunRequested,
    RunRetryRequested,
    RunSource,
    RunStarted,
    TapeIngested,
)
from contracts.tapes import TapeEnd
from contracts.topics import RUNS, Topic
from contracts.wire import IngestedBatch, LoanIngested, LoanRecord, from_contract
from services.common.consumer import gc_paused, is_transient
from services.common.metrics import record_loans_processed
from services.common.storage import Storage, safe_key
from services.ingest import storage_io
from services.ingest.domain import Normaliser
from services.ingest.duplicates import SqliteDuplicateIndex
from services.ingest.errors import TapeError
from services.ingest.readers import read_rows, rebuild_tape_csv
from services.ingest.settings import IngestSettings
from services.ingest.spool import (
    EndedTape,
    Spool,
    already_handled,
    expired_message,
    incomplete_message,
    tape_attempt,
)

logger = logging.getLogger(__name__)

PRODUCER = "ingest"
Clock = Callable[[], datetime]
SendBatch = Callable[[IngestedBatch], Awaitable["asyncio.Future[Any]"]]
"""Hands a loan batch to the producer and returns the future of its acknowledgement."""


class RunPublisher(Protocol):
    """Publishes one contract and waits for the broker's acknowledgement."""

    async def publish(
        self, topic: Topic, key: str, event: BaseModel, headers: dict[str, str] | None = None
    ) -> None: ...


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


class IncompleteTape(TapeError):
    """A producer's tape whose rows 1..N did not all arrive, or with rows beyond N."""


class TapeExpired(TapeError):
    """A producer's tape whose end marker came after its rows had expired and been dropped."""


def tape_file_name(tape_id: str) -> str:
    """The source file a producer's tape stands for (SPEC §2)."""
    return f"{tape_id}.csv"


@dataclass(slots=True)
class LoanBatchSender:
    """Cuts a run's loan records into IngestedBatches and publishes them, a window in flight."""

    send_batch: SendBatch
    settings: IngestSettings
    run_id: UUID
    params: wire.RunParams
    clock: Clock
    batch_count: int = 0
    pending: deque[asyncio.Future[object]] = field(default_factory=deque)
    buffer: list[LoanRecord] = field(default_factory=list)

    async def send_all(self, records: Iterator[LoanRecord]) -> None:
        """Publish records in full batches of `loan_batch_size`, in tape order; a partly filled
        batch waits for the next file's records (or `finish`)."""
        size = self.settings.loan_batch_size
        while more := list(islice(records, size - len(self.buffer))):
            self.buffer.extend(more)
            if len(self.buffer) >= size:
                await self._send(self.buffer)
                self.buffer = []

    async def _send(self, records: list[LoanRecord]) -> None:
        occurred_at = self.clock()
        with gc_paused():
            batch = IngestedBatch(
                run_id=self.run_id,
                batch_seq=self.batch_count,
                params=self.params,
                events=tuple(
                    LoanIngested(
                        event_id=event_id("loan.ingested", self.run_id, record.loan_id),
                        run_id=self.run_id,
                        occurred_at=occurred_at,
                        producer=PRODUCER,
                        loan=record,
                    )
                    for record in records
                ),
            )
        future = await self.send_batch(batch)
        self.pending.append(future)
        self.batch_count += 1
        record_loans_processed(PRODUCER, PRODUCER, len(records))
        while len(self.pending) > self.settings.publish_window:
            await self.pending.popleft()

    async def abandon(self) -> None:
        """The run failed: drop the unsent records, wait for what is already in flight."""
        self.buffer = []
        await self.finish()

    async def finish(self) -> int:
        """Send the last batch, wait for the broker's acks; the number of batches sent."""
        if self.buffer:
            await self._send(self.buffer)
            self.buffer = []
        while self.pending:
            await self.pending.popleft()
        return self.batch_count


class IngestService:
    """Reads a run's tape (stored files or a producer's spool) and publishes its loans."""

    def __init__(
        self,
        settings: IngestSettings,
        storage: Storage,
        publisher: RunPublisher,
        send_batch: SendBatch,
        spool: Spool,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.publisher = publisher
        self.send_batch = send_batch
        self.spool = spool
        self.clock = clock

    async def on_run_requested(self, request: RunRequested) -> None:
        """A run over a folder of the `inputs` area."""
        started = self._started(
            request.run_id,
            request.params,
            RunSource(kind="folder", location=request.folder),
            request.created_at,
        )
        await self.ingest_files(started, storage_io.inputs_prefix(request.folder))

    async def on_reprocess_requested(self, request: RunReprocessRequested) -> None:
        """A new run over a parent run's archived inputs."""
        parent = request.parent_run_id
        started = self._started(
            request.run_id,
            request.params,
            RunSource(kind="archive", location=str(parent)),
            request.created_at,
        ).model_copy(update={"parent_run_id": parent})
        await self.ingest_files(started, storage_io.archive_input_prefix(parent))

    async def on_retry_requested(
        self, retry: RunRetryRequested, started: RunStarted | None
    ) -> None:
        """Redo the ingest phase of a failed run from the start it recorded."""
        if retry.phase != "ingest":
            return
        if started is None:
            error = "cannot retry the ingest phase: ingest has no record of how this run started"
            await self._fail(retry.run_id, error, retry.attempt)
            return
        again = started.model_copy(
            update={
                "event_id": event_id("run.started", retry.run_id, retry.attempt),
                "occurred_at": self.clock(),
                "attempt": retry.attempt,
            }
        )
        source = started.source
        if source.kind == "tape":
            await self.retry_tape(again, source.location)
        elif source.kind == "archive":
            await self.ingest_files(again, storage_io.archive_input_prefix(UUID(source.location)))
        else:
            await self.ingest_files(again, storage_io.inputs_prefix(source.location))

    async def ingest_files(self, started: RunStarted, prefix: str) -> None:
        """Publish the run's start, archive its files, then its loans and totals (or failure)."""
        await self._publish_run(started)
        sender = self._sender(started)
        try:
            names = await storage_io.tape_files(self.storage, prefix)
            await storage_io.archive_inputs(self.storage, prefix, names, started.run_id)
            with self._duplicate_index() as duplicates:
                normaliser = Normaliser(started.run_id, duplicates)
                for name in names:
                    async with self._downloaded(safe_key(prefix, name)) as path:
                        # Close the readers while their file is open, even when a failure's
                        # traceback still holds them.
                        with (
                            path.open("rb") as stream,
                            closing(read_rows(name, stream, self.settings.read_limits)) as rows,
                        ):
                            await sender.send_all(normaliser.file(name, rows))
                await self._ingested(started, sender, normaliser, names)
        except TapeError as error:
            await sender.abandon()
            await self._fail(started.run_id, str(error), started.attempt)
        except Exception as error:
            if is_transient(error):
                raise  # redelivered and redone: every event it publishes is deterministic
            await self._crashed(started, sender, error)

    async def on_tape_end(
        self, end: TapeEnd, partition: int, offset: int, timestamp: datetime
    ) -> None:
        """A producer's end marker: the tape's run, unless this marker was already handled."""
        previous = self.spool.ended(end.tape_id)
        if previous is not None and already_handled(previous, partition, offset):
            # The replay spooled the tape's rows again: close it again, or it stays open.
            self.spool.end(end.tape_id, previous)
            logger.info(
                "end marker already handled",
                extra={"tape_id": end.tape_id, "partition": partition, "offset": offset},
            )
            return
        created_at, attempt = tape_attempt(previous, timestamp)
        run_id = tape_run_id(end.tape_id)
        params = RunParams(
            irr_target=end.irr_target, pdate=end.pdate, sales_team_id=end.sales_team_id
        )
        started = self._started(
            run_id, params, RunSource(kind="tape", location=end.tape_id), created_at, attempt
        )
        ok = await self.ingest_tape(started, end.tape_id, end.rows)
        self.spool.end(
            end.tape_id, EndedTape(partition, offset, created_at, attempt, not ok, end.rows)
        )

    async def retry_tape(self, started: RunStarted, tape_id: str) -> None:
        """A retry of a tape run: its spooled rows are checked again against its end marker."""
        previous = self.spool.ended(tape_id)
        if previous is None:
            error = f"cannot retry tape {tape_id!r}: its rows are no longer spooled; push it again"
            await self._publish_run(started)
            await self._fail(started.run_id, error, started.attempt)
            return
        ok = await self.ingest_tape(started, tape_id, previous.rows)
        self.spool.end(
            tape_id,
            EndedTape(
                previous.partition,
                previous.end_offset,
                previous.created_at,
                started.attempt,
                not ok,
                previous.rows,
            ),
        )

    async def ingest_tape(self, started: RunStarted, tape_id: str, rows: int) -> bool:
        """Publish a spooled tape's run as if it were the file `{tape_id}.csv`; False if failed."""
        await self._publish_run(started)
        sender = self._sender(started)
        name = tape_file_name(tape_id)
        try:
            expired = self.spool.expired(tape_id)
            if expired is not None:
                raise TapeExpired(expired_message(expired))
            found = self.spool.completeness(tape_id, rows, self.settings.missing_rows_shown)
            if not found.complete:
                raise IncompleteTape(incomplete_message(tape_id, found))
            await self._archive_tape(started.run_id, tape_id, name)
            with self._duplicate_index() as duplicates:
                normaliser = Normaliser(started.run_id, duplicates)
                await sender.send_all(normaliser.tape(name, self.spool.rows(tape_id)))
                if normaliser.total_loans == 0:
                    raise IncompleteTape(f"tape {tape_id!r} has no data rows")
                await self._ingested(started, sender, normaliser, [name])
        except TapeError as error:
            await sender.abandon()
            await self._fail(started.run_id, str(error), started.attempt)
            return False
        except Exception as error:
            if is_transient(error):
                raise
            await self._crashed(started, sender, error)
            return False
        return True

    async def _archive_tape(self, run_id: UUID, tape_id: str, name: str) -> None:
        """Write the tape as CSV with its original column names to the run's archive."""
        columns = self.spool.columns(tape_id)
        if self.settings.work_dir is not None:
            self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ingest-", dir=self.settings.work_dir) as folder:
            path = Path(folder) / "tape.csv"
            with path.open("w", encoding="utf-8", newline="") as handle:
                for chunk in rebuild_tape_csv(columns, self.spool.rows(tape_id)):
                    handle.write(chunk)
            key = safe_key(storage_io.archive_input_prefix(run_id), name)
            await self.storage.put_file(key, path)

    def _duplicate_index(self) -> SqliteDuplicateIndex:
        work_dir = self.settings.work_dir
        if work_dir is not None:
            work_dir.mkdir(parents=True, exist_ok=True)
        return SqliteDuplicateIndex(work_dir)

    def _downloaded(self, key: str) -> storage_io.Downloaded:
        return storage_io.downloaded(self.storage, key, self.settings.work_dir)

    def _sender(self, started: RunStarted) -> LoanBatchSender:
        params = from_contract(started.params, wire.RunParams)
        return LoanBatchSender(self.send_batch, self.settings, started.run_id, params, self.clock)

    def _started(
        self,
        run_id: UUID,
        params: RunParams,
        source: RunSource,
        created_at: datetime,
        attempt: int = 1,
    ) -> RunStarted:
        return RunStarted(
            event_id=event_id("run.started", run_id, attempt),
            run_id=run_id,
            occurred_at=self.clock(),
            producer=PRODUCER,
            params=params,
            source=source,
            created_at=created_at,
            attempt=attempt,
        )

    async def _ingested(
        self,
        started: RunStarted,
        sender: LoanBatchSender,
        normaliser: Normaliser,
        files: list[str],
    ) -> None:
        batch_count = await sender.finish()
        run_id = started.run_id
        await self._publish_run(
            TapeIngested(
                event_id=event_id("run.tape_ingested", run_id, started.attempt),
                run_id=run_id,
                occurred_at=self.clock(),
                producer=PRODUCER,
                total_loans=normaliser.total_loans,
                total_balance=normaliser.total_balance,
                batch_count=batch_count,
                files=tuple(files),
                duplicates=normaliser.duplicates,
            )
        )
        logger.info(
            "tape ingested",
            extra={
                "run_id": str(run_id),
                "total_loans": normaliser.total_loans,
                "batches": batch_count,
                "files": len(files),
            },
        )

    async def _crashed(
        self, started: RunStarted, sender: LoanBatchSender, error: Exception
    ) -> None:
        """A fault that no redelivery can cure (a bug): the run fails instead of hanging."""
        logger.exception("ingest crashed", extra={"run_id": str(started.run_id)})
        await sender.abandon()
        # The user sees the kind of fault only: its details (paths, internals) stay in the log.
        reason = f"ingest failed unexpectedly ({type(error).__name__}); see the ingest log"
        await self._fail(started.run_id, reason, started.attempt)

    async def _fail(self, run_id: UUID, error: str, attempt: int) -> None:
        logger.warning("run failed in ingest", extra={"run_id": str(run_id), "error": error[:500]})
        await self._publish_run(
            RunFailed(
                event_id=event_id("run.failed", run_id, "ingest", attempt),
                run_id=run_id,
                occurred_at=self.clock(),
                producer=PRODUCER,
                phase="ingest",
                error=error,
                attempt=attempt,
            )
        )

    async def _publish_run(self, event: RunStarted | TapeIngested | RunFailed) -> None:
        await self.publisher.publish(RUNS, str(event.run_id), event)
