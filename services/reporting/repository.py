"""Reporting's own tables (schema `reporting`) and the SQL over them; the caller commits.

`runs` tracks each run: its totals once ingest has published them, and how many of its loans have
been dispositioned (counted from rows newly inserted, so a redelivered batch adds nothing).
`loans` keeps every dispositioned loan keyed by its run and tape position (`seq`, which names the
loan as its id does) as the reports need it: its report rows already rendered as CSV text and its
exceptions' summary facts, streamed back in tape order when the reports are written (so
completion only concatenates text). One index a loan: storing is most of reporting's database
work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import cast
from uuid import UUID

import asyncpg
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    case,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.codec import dumps
from contracts.runs import RunFailed, RunStarted, TapeIngested
from services.reporting.reports import RenderedLoan

SCHEMA = "reporting"
metadata = MetaData(schema=SCHEMA)

runs = Table(
    "runs",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    # pending -> running -> completed | failed (a failed run may still complete after a retry)
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True)),
    Column("params", JSONB),
    Column("source", JSONB),
    Column("total_loans", Integer),
    Column("total_balance", Text, comment="Exact Decimal text from the tape-ingested event."),
    Column("files", JSONB),
    Column("dispositioned", Integer, nullable=False, server_default="0"),
    Column("failed_phase", Text),
    Column("error", Text),
    Column("completed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

loans = Table(
    "loans",
    metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("disposition", Text, nullable=False),
    Column("report_rows", Text, nullable=False, comment="The loan's report rows as CSV text."),
    Column(
        "exceptions",
        Text,
        comment="JSON list of [type, category, severity, criteria, message]; null when none.",
    ),
)


# seq, disposition, report rows, exceptions (JSON or None): a loan as completion reads it.
StoredLoan = tuple[int, str, str, str | None]


@dataclass(frozen=True, slots=True)
class RunState:
    """What completion needs to know about a run."""

    run_id: UUID
    status: str
    attempt: int
    total_loans: int | None
    total_balance: str | None
    dispositioned: int
    created_at: datetime | None = None

    @property
    def ready(self) -> bool:
        """Every ingested loan has been dispositioned and the run is not completed yet."""
        return (
            self.status != "completed"
            and self.total_loans is not None
            and self.dispositioned == self.total_loans
        )

    @property
    def balance(self) -> Decimal:
        """The run's total balance as ingest summed it."""
        return Decimal(self.total_balance or "0")


_STATE = (
    runs.c.run_id,
    runs.c.status,
    runs.c.attempt,
    runs.c.total_loans,
    runs.c.total_balance,
    runs.c.dispositioned,
    runs.c.created_at,
)

# One statement: insert the batch's loans, skip those already stored, and add the number of
# rows actually inserted to the run's counter, so a redelivery changes nothing.
_ADD_LOANS = text(
    """
    WITH inserted AS (
        INSERT INTO reporting.loans (run_id, seq, disposition, report_rows, exceptions)
        SELECT :run_id, seq, disposition, report_rows, exceptions
        FROM unnest(
            CAST(:seqs AS integer[]),
            CAST(:dispositions AS text[]),
            CAST(:report_rows AS text[]),
            CAST(:exceptions AS text[])
        ) AS batch (seq, disposition, report_rows, exceptions)
        ON CONFLICT (run_id, seq) DO NOTHING
        RETURNING 1
    )
    UPDATE reporting.runs
    SET dispositioned = dispositioned + (SELECT count(*) FROM inserted), updated_at = now()
    WHERE run_id = :run_id
    RETURNING run_id, status, attempt, total_loans, total_balance, dispositioned
    """
)


# Built once: it runs for every batch, and building the statement cost more than running it.
_ENSURE_RUN = insert(runs).values(run_id=bindparam("run_id")).on_conflict_do_nothing()

# A batch's loans COPYed in: add them all to the run's counter.
_COUNT_LOANS = text(
    """
    UPDATE reporting.runs
    SET dispositioned = dispositioned + :count, updated_at = now()
    WHERE run_id = :run_id
    RETURNING run_id, status, attempt, total_loans, total_balance, dispositioned
    """
)
_LOAN_COLUMNS = ("run_id", "seq", "disposition", "report_rows", "exceptions")


class LoansAlreadyStored(Exception):
    """A loan of the batch is stored already (a redelivery): the transaction is lost, and the
    batch is to be stored again with `add_loans` in a new one."""


# A page of a run's stored loans in tape order, after a seq (asyncpg's own placeholders).
_STREAM_LOANS = (
    "SELECT seq, disposition, report_rows, exceptions FROM reporting.loans"
    " WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
)


def exceptions_json(loan: RenderedLoan) -> str | None:
    """What is stored of a loan's exceptions: their facts as JSON, None when it has none."""
    return dumps(loan.exceptions).decode() if loan.exceptions else None


class ReportingRepository:
    """SQL over reporting's tables on one connection; never commits."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def ensure_run(self, run_id: UUID) -> None:
        """Create the run's row if no event of it has been seen yet."""
        await self.connection.execute(_ENSURE_RUN, {"run_id": run_id})

    async def get(self, run_id: UUID) -> RunState | None:
        """The run's state, or None when reporting has never heard of it."""
        row = (
            await self.connection.execute(select(*_STATE).where(runs.c.run_id == run_id))
        ).one_or_none()
        return None if row is None else RunState(*row)

    async def add_new_loans(self, run_id: UUID, loans: Sequence[RenderedLoan]) -> RunState:
        """Store a batch's rendered loans, none stored yet, and count them all.

        COPY, the cheapest way in for this process and the server alike (no parameter arrays to
        encode and unpack, no speculative insertion a row); a loan stored before makes it fail
        with `LoansAlreadyStored`, which leaves the transaction unusable.
        """
        await self.ensure_run(run_id)  # through SQLAlchemy: the transaction begins here
        driver = (await self.connection.get_raw_connection()).driver_connection
        if not driver.is_in_transaction():
            # Outside one, the COPY would commit without the count: a redelivery would add none.
            raise RuntimeError("add_new_loans needs a transaction (engine.begin())")
        try:
            await driver.copy_records_to_table(
                "loans",
                schema_name=SCHEMA,
                columns=_LOAN_COLUMNS,
                records=[
                    (run_id, loan.seq, loan.disposition, loan.text, exceptions_json(loan))
                    for loan in loans
                ],
            )
        except asyncpg.UniqueViolationError as error:
            raise LoansAlreadyStored(f"a loan of the batch of run {run_id} is stored") from error
        result = await self.connection.execute(
            _COUNT_LOANS, {"run_id": run_id, "count": len(loans)}
        )
        return RunState(*result.one())

    async def add_loans(self, run_id: UUID, loans: Sequence[RenderedLoan]) -> RunState:
        """Store a batch's rendered loans (idempotent) and count the newly inserted ones."""
        await self.ensure_run(run_id)
        result = await self.connection.execute(
            _ADD_LOANS,
            {
                "run_id": run_id,
                "seqs": [loan.seq for loan in loans],
                "dispositions": [loan.disposition for loan in loans],
                "report_rows": [loan.text for loan in loans],
                "exceptions": [exceptions_json(loan) for loan in loans],
            },
        )
        return RunState(*result.one())

    async def record_started(self, event: RunStarted) -> None:
        """Remember the run's creation, parameters and source; it is running unless completed."""
        statement = insert(runs).values(
            run_id=event.run_id,
            status="running",
            attempt=event.attempt,
            created_at=event.created_at,
            params=event.params.model_dump(mode="json"),
            source=event.source.model_dump(mode="json"),
        )
        excluded = statement.excluded
        await self.connection.execute(
            statement.on_conflict_do_update(
                index_elements=[runs.c.run_id],
                set_={
                    "created_at": excluded.created_at,
                    "params": excluded.params,
                    "source": excluded.source,
                    "attempt": func.greatest(runs.c.attempt, excluded.attempt),
                    "status": case((runs.c.status == "completed", "completed"), else_="running"),
                    "updated_at": func.now(),
                },
            )
        )

    async def record_ingested(self, event: TapeIngested) -> RunState:
        """Record the run's final loan count and balance; the state to check for completion."""
        await self.ensure_run(event.run_id)
        statement = (
            update(runs)
            .where(runs.c.run_id == event.run_id)
            .values(
                total_loans=event.total_loans,
                total_balance=str(event.total_balance),
                files=list(event.files),
                updated_at=func.now(),
            )
            .returning(*_STATE)
        )
        return RunState(*(await self.connection.execute(statement)).one())

    async def record_failed(self, event: RunFailed) -> None:
        """Mark the run failed at a phase, unless it has completed."""
        await self.ensure_run(event.run_id)
        await self.connection.execute(
            update(runs)
            .where(runs.c.run_id == event.run_id, runs.c.status != "completed")
            .values(
                status="failed",
                failed_phase=event.phase,
                error=event.error,
                attempt=event.attempt,
                updated_at=func.now(),
            )
        )

    async def record_retry(self, run_id: UUID, attempt: int) -> RunState | None:
        """A failed run is retried: running again, with the new attempt number."""
        statement = (
            update(runs)
            .where(runs.c.run_id == run_id, runs.c.status != "completed")
            .values(status="running", attempt=attempt, failed_phase=None, updated_at=func.now())
            .returning(*_STATE)
        )
        row = (await self.connection.execute(statement)).one_or_none()
        return None if row is None else RunState(*row)

    async def mark_completed(self, run_id: UUID, completed_at: datetime) -> bool:
        """Complete the run; False when it already was (the guard that makes it happen once)."""
        statement = (
            update(runs)
            .where(runs.c.run_id == run_id, runs.c.status != "completed")
            .values(
                status="completed", completed_at=completed_at, error=None, updated_at=func.now()
            )
            .returning(runs.c.run_id)
        )
        return (await self.connection.execute(statement)).one_or_none() is not None

    async def stream_loans(self, run_id: UUID, chunk: int) -> AsyncIterator[Sequence[StoredLoan]]:
        """The run's stored loans in tape order, `chunk` at a time.

        A page a round trip, each after the last `seq` of the one before (the primary key's
        order), fetched by the driver as its records (which unpack and compare as tuples): a run's
        every loan passes here, and a result row object a loan cost more than the fetch itself.
        Once a run is ready its loans are all in and never change (a redelivery is skipped), so
        the pages need no common snapshot.
        """
        driver = (await self.connection.get_raw_connection()).driver_connection
        last = 0  # seq counts from 1
        while True:
            page = await driver.fetch(_STREAM_LOANS, run_id, last, chunk)
            if page:
                yield cast(Sequence[StoredLoan], page)
            if len(page) < chunk:
                return
            last = page[-1][0]
