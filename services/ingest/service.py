"""Ingest's use cases: a run over stored files or a producer's spooled tape, to loan batches.

Every event id is deterministic (`contracts.ids.event_id`), so handling the same request or end
marker again re-publishes the same facts and downstream consumers drop the repeats. Loans stream:
one file (or the spool) is read row by row in a worker thread and published batch by batch with
a bounded number of batches in flight, so memory does not grow with the tape and the event loop
keeps serving heartbeats, health checks and the other consumer. Every file of a run is surveyed
(services.ingest.survey) before its first loan is published, so a file that breaks a limit fails
its run before anything went out.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import aclosing, closing
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol
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
from contracts.wire import LoanRecord, from_contract
from services.common.consumer import is_transient
from services.common.storage import Storage, safe_key
from services.ingest import storage_io
from services.ingest.batches import PRODUCER, LoanBatchSender, SendBatch
from services.ingest.domain import Normaliser
from services.ingest.duplicates import SqliteDuplicateIndex
from services.ingest.edits import RowEdits
from services.ingest.errors import IngestError, TapeError
from services.ingest.fingerprints import Fingerprint, TapeHasher, refused_repush
from services.ingest.offload import Interrupted, Offload
from services.ingest.readers import ReadLimits, read_rows, rebuild_tape_csv
from services.ingest.settings import IngestSettings
from services.ingest.spool import (
    EndedTape,
    Spool,
    already_handled,
    expired_message,
    incomplete_message,
    tape_attempt,
)
from services.ingest.survey import survey_tape

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


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


class TapeRefused(IngestError):
    """A push that must not become a run (it would change a completed tape): dead-lettered."""


class TapeExpired(TapeError):
    """A producer's tape whose end marker came after its rows had expired and been dropped."""


def tape_file_name(tape_id: str) -> str:
    """The source file a producer's tape stands for (SPEC §2)."""
    return f"{tape_id}.csv"


def file_records(
    normaliser: Normaliser, name: str, path: Path, limits: ReadLimits
) -> Iterator[LoanRecord]:
    """The loans of one downloaded tape file (blocking: read in a worker thread)."""
    # Close the readers while their file is open, even when a failure's traceback holds them.
    with path.open("rb") as stream, closing(read_rows(name, stream, limits)) as rows:
        yield from normaliser.file(name, rows)


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
        self.offload = Offload()

    def stop(self) -> None:
        """Abandon the tape being read (shutdown): its request or end marker is read again later."""
        self.offload.stop()

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
        """A new run over a parent run's archived inputs, with its corrections and row filter."""
        parent = request.parent_run_id
        started = self._started(
            request.run_id,
            request.params,
            RunSource(kind="archive", location=str(parent)),
            request.created_at,
        ).model_copy(update={"parent_run_id": parent, "edits": request.edits})
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
        """Publish the run's start, archive its files, survey them all, then publish their loans
        and totals (or the run's failure)."""
        await self._publish_run(started)
        sender = self._sender(started)
        limits = self.settings.read_limits
        try:
            names = await storage_io.tape_files(self.storage, prefix)
            await storage_io.archive_inputs(self.storage, prefix, names, started.run_id)
            async with storage_io.downloaded_all(
                self.storage, prefix, names, self.settings.work_dir
            ) as paths:
                for name, path in zip(names, paths, strict=True):
                    await self.offload.call(partial(self._survey, name, path, limits))
                with self._duplicate_index() as duplicates:
                    normaliser = Normaliser(started.run_id, duplicates, RowEdits.of(started.edits))
                    for name, path in zip(names, paths, strict=True):
                        records = partial(file_records, normaliser, name, path, limits)
                        await self._publish(records, sender)
                    await self._ingested(started, sender, normaliser, names)
        except Interrupted:
            sender.drop()
            raise
        except TapeError as error:
            await sender.abandon()
            await self._fail(started.run_id, str(error), started.attempt)
        except Exception as error:
            if is_transient(error):
                raise  # redelivered and redone: every event it publishes is deterministic
            await self._crashed(started, sender, error)

    def _survey(self, name: str, path: Path, limits: ReadLimits) -> None:
        with path.open("rb") as stream:
            survey_tape(name, stream, limits, lambda: self.offload.stopping)

    async def _publish(
        self, records: Callable[[], Iterator[LoanRecord]], sender: LoanBatchSender
    ) -> None:
        """Read records in a worker thread and publish them as they come, in batches."""
        size = self.settings.loan_batch_size
        async with aclosing(self.offload.chunks(records, size)) as chunks:
            async for chunk in chunks:
                await sender.add(chunk)

    async def on_tape_end(
        self, end: TapeEnd, partition: int, offset: int, timestamp: datetime
    ) -> None:
        """A producer's end marker: the tape's run, unless this marker was already handled.

        A completed tape pushed again runs again only with the same rows and parameters (the
        same events again); any other push of it raises TapeRefused and is forgotten.
        """
        previous = self.spool.ended(end.tape_id)
        if previous is not None and already_handled(previous, partition, offset):
            # The replay spooled the tape's rows again: close it again, or it stays open.
            self.spool.end(end.tape_id, previous)
            logger.info(
                "end marker already handled",
                extra={"tape_id": end.tape_id, "partition": partition, "offset": offset},
            )
            return
        params = RunParams(
            irr_target=end.irr_target, pdate=end.pdate, sales_team_id=end.sales_team_id
        )
        if previous is not None and not previous.failed and previous.digest is not None:
            why = await self._differs(end.tape_id, end.rows, params, previous.digest)
            if why is not None:
                self.spool.drop_push(end.tape_id)
                raise TapeRefused(refused_repush(end.tape_id, why))
        created_at, attempt = tape_attempt(previous, timestamp)
        run_id = tape_run_id(end.tape_id)
        started = self._started(
            run_id, params, RunSource(kind="tape", location=end.tape_id), created_at, attempt
        )
        fingerprint = await self.ingest_tape(started, end.tape_id, end.rows)
        outcome = EndedTape(partition, offset, created_at, attempt, fingerprint is None, end.rows)
        self._ended(end.tape_id, outcome, fingerprint)

    async def _differs(self, tape_id: str, rows: int, params: RunParams, digest: str) -> str | None:
        """How a new push of a completed tape differs from it, or None when it is the same."""
        found = await self.offload.call(partial(self.spool.completeness, tape_id, rows, 1))
        if not found.complete:
            return "its rows are not the rows it completed with"
        hashed = await self.offload.call(partial(self._fingerprint, tape_id, rows, params))
        if hashed.digest != digest:
            return "different rows or run parameters"
        return None

    def _fingerprint(self, tape_id: str, rows: int, params: RunParams) -> Fingerprint:
        hasher = TapeHasher()
        for _ in hasher.passing(self.spool.rows(tape_id)):
            pass
        return hasher.fingerprint(rows, params)

    def _ended(self, tape_id: str, outcome: EndedTape, fingerprint: Fingerprint | None) -> None:
        """Record the tape's end: failed without a fingerprint, completed with one."""
        if fingerprint is None:
            self.spool.end(tape_id, replace(outcome, failed=True, digest=None))
        else:
            completed = replace(outcome, failed=False, digest=fingerprint.digest)
            self.spool.end(tape_id, completed, fingerprint.hashes)

    async def retry_tape(self, started: RunStarted, tape_id: str) -> None:
        """A retry of a tape run: its spooled rows are checked again against its end marker."""
        previous = self.spool.ended(tape_id)
        if previous is None:
            error = f"cannot retry tape {tape_id!r}: its rows are no longer spooled; push it again"
            await self._publish_run(started)
            await self._fail(started.run_id, error, started.attempt)
            return
        fingerprint = await self.ingest_tape(started, tape_id, previous.rows)
        self._ended(tape_id, replace(previous, attempt=started.attempt), fingerprint)

    async def ingest_tape(self, started: RunStarted, tape_id: str, rows: int) -> Fingerprint | None:
        """Publish a spooled tape's run as if it were the file `{tape_id}.csv`: its fingerprint,
        or None if the run failed."""
        await self._publish_run(started)
        sender = self._sender(started)
        name = tape_file_name(tape_id)
        try:
            expired = self.spool.expired(tape_id)
            if expired is not None:
                raise TapeExpired(expired_message(expired))
            shown = self.settings.missing_rows_shown
            found = await self.offload.call(partial(self.spool.completeness, tape_id, rows, shown))
            if not found.complete:
                raise IncompleteTape(incomplete_message(tape_id, found))
            hasher = TapeHasher()
            await self._archive_tape(started.run_id, tape_id, name, hasher)
            with self._duplicate_index() as duplicates:
                normaliser = Normaliser(started.run_id, duplicates)
                records = partial(normaliser.tape, name, self.spool.rows(tape_id))
                await self._publish(records, sender)
                if normaliser.total_loans == 0:
                    raise IncompleteTape(f"tape {tape_id!r} has no data rows")
                await self._ingested(started, sender, normaliser, [name])
        except Interrupted:
            sender.drop()
            raise
        except TapeError as error:
            await sender.abandon()
            await self._fail(started.run_id, str(error), started.attempt)
            return None
        except Exception as error:
            if is_transient(error):
                raise
            await self._crashed(started, sender, error)
            return None
        return hasher.fingerprint(rows, started.params)

    async def _archive_tape(
        self, run_id: UUID, tape_id: str, name: str, hasher: TapeHasher
    ) -> None:
        """Write the tape as CSV with its original column names to the run's archive, hashing
        its rows on the way."""
        if self.settings.work_dir is not None:
            self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ingest-", dir=self.settings.work_dir) as folder:
            path = Path(folder) / "tape.csv"
            await self.offload.call(partial(self._write_tape_csv, tape_id, path, hasher))
            key = safe_key(storage_io.archive_input_prefix(run_id), name)
            await self.storage.put_file(key, path)

    def _write_tape_csv(self, tape_id: str, path: Path, hasher: TapeHasher) -> None:
        columns = self.spool.columns(tape_id)
        with path.open("w", encoding="utf-8", newline="") as handle:
            for chunk in rebuild_tape_csv(columns, hasher.passing(self.spool.rows(tape_id))):
                handle.write(chunk)

    def _duplicate_index(self) -> SqliteDuplicateIndex:
        work_dir = self.settings.work_dir
        if work_dir is not None:
            work_dir.mkdir(parents=True, exist_ok=True)
        return SqliteDuplicateIndex(work_dir)

    def _sender(self, started: RunStarted) -> LoanBatchSender:
        settings = self.settings
        return LoanBatchSender(
            self.send_batch,
            started.run_id,
            from_contract(started.params, wire.RunParams),
            self.clock,
            batch_size=settings.loan_batch_size,
            max_batch_bytes=settings.max_batch_bytes,
            publish_window=settings.publish_window,
        )

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
