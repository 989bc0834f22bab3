"""Builders of a run's whole event stream, as Kafka records, for the gateway's tests.

`RunScenario` makes the events the pipeline would publish for a run of `loans` loans (some of them
rejected, some projected) and turns them into the records the projector reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from pydantic import BaseModel

from contracts import topics
from contracts.codec import encode
from contracts.ids import batch_key, event_id
from contracts.loans import (
    DispositionedBatch,
    EvaluatedBatch,
    IngestedBatch,
    LoanDispositioned,
    LoanEvaluated,
    LoanIngested,
    LoanPriced,
    PricedBatch,
    RowRef,
    RunParams,
)
from contracts.runs import (
    Dispositions,
    OutputsWritten,
    ReportFile,
    RunCompleted,
    RunFailed,
    RunRequested,
    RunSource,
    RunStarted,
    TapeIngested,
)
from services.gateway.projector.plan import Record
from tests.factories import loan_record, process_loan

CREATED_AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # a Monday
REPORT_KEYS = ("purchase_tape", "projected_tape", "rejection_report", "exception_summary")


def loan_variant(index: int) -> dict[str, str | None]:
    """Field overrides making every 5th loan fail DTI, every 7th miss its property type, every
    11th have a note rate outside the pricing range (projected), every 13th an invalid amount and
    a seller loan number that a spreadsheet would take for a formula."""
    fields: dict[str, str | None] = {"seller_loan_number": f"LN{index:07d}"}
    if index % 5 == 0:
        fields["dti_ratio"] = "55.0"
    if index % 7 == 0:
        fields["property_type"] = None
    if index % 11 == 0:
        fields["note_rate"] = "16.5"
    if index % 13 == 0:
        fields["loan_amount"] = "=HYPERLINK(1)"
        fields["seller_loan_number"] = f"=SUM({index})"
    return fields


@dataclass
class RunScenario:
    """A run and every event of it, in the order the pipeline publishes them."""

    run_id: UUID = field(default_factory=uuid4)
    loans: int = 12
    batch_size: int = 5
    sales_team_id: str | None = None
    created_at: datetime = CREATED_AT
    folder: str = "tapes"
    requested: bool = True
    fail_phase: str | None = None
    source_file: str = "tape.csv"
    duplicate_every: int = 0

    @property
    def params(self) -> RunParams:
        return RunParams(
            irr_target=Decimal("8.05"), pdate=date(2026, 11, 23), sales_team_id=self.sales_team_id
        )

    def _at(self, seconds: float) -> datetime:
        return self.created_at + timedelta(seconds=seconds)

    def dispositioned(self) -> list[LoanDispositioned]:
        """Every loan's final event."""
        result = []
        for seq in range(1, self.loans + 1):
            duplicate = None
            if self.duplicate_every and seq % self.duplicate_every == 0:
                duplicate = RowRef(source_file=self.source_file, row=1)
            invalid = ("loan_amount",) if seq % 13 == 0 else ()
            loan = loan_record(
                seq=seq,
                run_id=self.run_id,
                source_file=self.source_file,
                invalid=invalid,
                extra={"state": "NY"},
                duplicate_of=duplicate,
                **loan_variant(seq),
            )
            result.append(process_loan(loan, run_id=self.run_id))
        return result

    def _batches(self) -> Iterator[tuple[int, list[LoanDispositioned]]]:
        events = self.dispositioned()
        for start in range(0, len(events), self.batch_size):
            yield start // self.batch_size, events[start : start + self.batch_size]

    def run_events(self, *, ended: bool = True) -> list[BaseModel]:
        """The run's lifecycle events on runs.v1, in order."""
        envelope = {"run_id": self.run_id, "producer": "test"}
        events: list[BaseModel] = []
        if self.requested:
            events.append(
                RunRequested(
                    **envelope,
                    event_id=event_id("run.requested", self.run_id),
                    occurred_at=self.created_at,
                    params=self.params,
                    folder=self.folder,
                    requested_by="tester",
                    created_at=self.created_at,
                )
            )
        events.append(
            RunStarted(
                **envelope,
                event_id=event_id("run.started", self.run_id, 1),
                occurred_at=self._at(1),
                params=self.params,
                source=RunSource(kind="folder", location=self.folder),
                created_at=self.created_at,
            )
        )
        if self.fail_phase == "ingest":
            events.append(self._failed("ingest"))
            return events
        balance = sum(
            (
                Decimal(e.loan.fields.loan_amount)
                for e in self.dispositioned()
                if not e.loan.invalid
            ),
            Decimal(0),
        )
        events.append(
            TapeIngested(
                **envelope,
                event_id=event_id("run.tape_ingested", self.run_id),
                occurred_at=self._at(2),
                total_loans=self.loans,
                total_balance=balance,
                batch_count=len(list(self._batches())),
                files=(self.source_file,),
                duplicates=0,
            )
        )
        if self.fail_phase is not None:
            events.append(self._failed(self.fail_phase))
            return events
        if not ended:
            return events
        reports = tuple(
            ReportFile(
                key=key,
                uri=f"/storage/outputs/{self.run_id}/{key}.csv",
                storage_key=f"outputs/{self.run_id}/{key}.csv",
                sha256="0" * 64,
                size=100 + index,
                rows=index,
            )
            for index, key in enumerate(REPORT_KEYS)
        )
        events.append(
            OutputsWritten(
                **envelope,
                event_id=event_id("run.outputs_written", self.run_id),
                occurred_at=self._at(9),
                reports=reports,
                archive_input=(f"archive/{self.run_id}/input/{self.source_file}",),
                archive_output=tuple(f"archive/{self.run_id}/output/{k}.csv" for k in REPORT_KEYS),
            )
        )
        counts = self.disposition_counts()
        events.append(
            RunCompleted(
                **envelope,
                event_id=event_id("run.completed", self.run_id),
                occurred_at=self._at(10),
                total_loans=self.loans,
                total_balance=balance,
                exceptions_count=sum(len(e.exceptions) for e in self.dispositioned()),
                dispositions=Dispositions(**counts),
                reports=reports,
                completed_at=self._at(10),
            )
        )
        return events

    def _failed(self, phase: str) -> RunFailed:
        return RunFailed(
            run_id=self.run_id,
            producer="test",
            event_id=event_id("run.failed", self.run_id, 1),
            occurred_at=self._at(3),
            phase=phase,  # type: ignore[arg-type]
            error=f"{phase} failed: the tape could not be read",
        )

    def disposition_counts(self) -> dict[str, int]:
        """Loans per disposition."""
        counts = {"to_purchase": 0, "projected": 0, "rejected": 0}
        for event in self.dispositioned():
            counts[event.disposition] += 1
        return counts

    def loan_batches(self) -> list[tuple[topics.Topic, BaseModel]]:
        """The run's batches on all four loan topics, stage by stage."""
        found: list[tuple[topics.Topic, BaseModel]] = []
        batches = list(self._batches())
        common = {"run_id": self.run_id, "params": self.params}
        for seq, events in batches:
            found.append(
                (
                    topics.LOANS_INGESTED,
                    IngestedBatch(
                        **common,
                        batch_seq=seq,
                        events=tuple(
                            LoanIngested(**_envelope(e, "loan.ingested"), loan=e.loan)
                            for e in events
                        ),
                    ),
                )
            )
        for seq, events in batches:
            found.append(
                (
                    topics.LOANS_EVALUATED,
                    EvaluatedBatch(
                        **common,
                        batch_seq=seq,
                        events=tuple(
                            LoanEvaluated(
                                **_envelope(e, "loan.evaluated"),
                                loan=e.loan,
                                exceptions=e.exceptions,
                                quality=e.quality,
                                rule_set_version=e.rule_set_version,
                            )
                            for e in events
                        ),
                    ),
                )
            )
        for seq, events in batches:
            found.append(
                (
                    topics.LOANS_PRICED,
                    PricedBatch(
                        **common,
                        batch_seq=seq,
                        events=tuple(
                            LoanPriced(
                                **_envelope(e, "loan.priced"),
                                loan=e.loan,
                                exceptions=e.exceptions,
                                quality=e.quality,
                                rule_set_version=e.rule_set_version,
                                pricing=e.pricing,
                            )
                            for e in events
                        ),
                    ),
                )
            )
        for seq, events in batches:
            found.append(
                (
                    topics.LOANS_DISPOSITIONED,
                    DispositionedBatch(**common, batch_seq=seq, events=tuple(events)),
                )
            )
        return found

    def messages(self, *, ended: bool = True) -> list[tuple[topics.Topic, str, BaseModel]]:
        """(topic, key, event) of the whole run in publishing order."""
        run_events = self.run_events(ended=ended)
        head = [(topics.RUNS, str(self.run_id), e) for e in run_events[:3]]
        tail = [(topics.RUNS, str(self.run_id), e) for e in run_events[3:]]
        loans = []
        if self.fail_phase is None:
            loans = [
                (topic, batch_key(batch.run_id, batch.batch_seq), batch)  # type: ignore[attr-defined]
                for topic, batch in self.loan_batches()
            ]
        return head + loans + tail

    def records(self, *, ended: bool = True, start_offset: int = 0) -> list[Record]:
        """The run's Kafka records as the projector reads them (partition 0, offsets in order)."""
        result = []
        for offset, (topic, key, event) in enumerate(self.messages(ended=ended), start_offset):
            result.append(to_record(topic, key, event, offset, self._at(5)))
        return result


def _envelope(event: LoanDispositioned, event_type: str) -> dict[str, object]:
    return {
        "event_id": event_id(event_type, event.run_id, event.loan.loan_id),
        "run_id": event.run_id,
        "occurred_at": event.occurred_at,
        "producer": "test",
    }


def headers_of(event: BaseModel) -> tuple[tuple[str, bytes], ...]:
    """The headers a loan batch travels with (none for run events)."""
    batch_type = getattr(event, "batch_type", None)
    if batch_type is None:
        return ()
    count = len(event.events)  # type: ignore[attr-defined]
    return (("event-type", batch_type.encode()), ("loan-count", str(count).encode()))


def to_record(topic: topics.Topic, key: str, event: BaseModel, offset: int, at: datetime) -> Record:
    """One Kafka record of `event`."""
    return Record(
        topic=topic.name,
        partition=0,
        offset=offset,
        key=key.encode(),
        value=encode(event),
        headers=headers_of(event),
        timestamp_ms=int(at.timestamp() * 1000),
    )


def all_records(scenarios: Sequence[RunScenario]) -> list[Record]:
    """Records of several runs, offsets running on."""
    records: list[Record] = []
    for scenario in scenarios:
        records.extend(scenario.records(start_offset=len(records)))
    return records
