"""Turn a chunk of Kafka records into the rows the read models need (no I/O).

Run events and dead letters are validated contracts; dispositioned batches are decoded and
validated by the projector's read types (`batches.ProjectedBatch`, the `contracts.wire` types
restricted to what the read models keep). The other loan topics are counted from their
`loan-count` headers without decoding the value (SPEC §2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import orjson
from pydantic import ValidationError

from contracts import topics
from contracts.codec import decode, decode_union
from contracts.dead_letters import DeadLetter
from contracts.numbers import DEFAULT_IRR_TARGET
from contracts.runs import RUN_EVENT, OutputsWritten, RunCompleted, RunDecided
from services.common.consumer import gc_paused
from services.gateway.projector.batches import DispositionedRows, dispositioned_rows
from services.gateway.projector.folds import FOLDS
from services.gateway.projector.hooks import hooks
from services.gateway.runs.progress import Stage

STAGE_OF_TOPIC: Mapping[str, Stage] = {
    topics.LOANS_INGESTED.name: "ingested",
    topics.LOANS_EVALUATED.name: "evaluated",
    topics.LOANS_PRICED.name: "priced",
    topics.LOANS_DISPOSITIONED.name: "dispositioned",
}


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record, by logical topic name."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0

    @property
    def timestamp(self) -> datetime:
        """The record's timestamp (kept in the log, so a replay sees the same)."""
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class BatchSeen:
    """One loan batch of a run on one loan topic (the unit of progress and of idempotency)."""

    run_id: UUID
    stage: Stage
    batch_seq: int
    loan_count: int
    recorded_at: datetime


@dataclass(slots=True)
class TapeSeen:
    """What the producer topic says about one tape so far."""

    tape_id: str
    max_row: int = 0
    expected_rows: int | None = None
    pdate: str | None = None
    irr_target: Decimal | None = None
    sales_team_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record the projector cannot read, and why."""

    record: Record
    reason: str


@dataclass(slots=True)
class Plan:
    """The rows of one chunk, grouped by what they feed."""

    run_events: list[Any] = field(default_factory=list)
    reports: list[tuple[Any, ...]] = field(default_factory=list)
    batches: list[BatchSeen] = field(default_factory=list)
    dispositioned: list[DispositionedRows] = field(default_factory=list)
    tapes: dict[str, TapeSeen] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    folded: dict[str, list[Any]] = field(default_factory=dict)
    """Decoded records of the topics in `folds.FOLDS`, by topic."""
    consumed: list[tuple[str, str, int]] = field(default_factory=list)
    """(topic, event type, loans) of every record read, for the metrics."""
    hooked: dict[str, list[Any]] = field(default_factory=dict)
    """Rows of the extra read models (projector.hooks), by hook name."""


def plan(records: Iterable[Record]) -> Plan:
    """The rows a chunk of records adds to the read models, and the records it cannot read.

    The collector is paused meanwhile: a chunk's rows are a few hundred thousand acyclic tuples
    (freed by reference counting), and collections scanning them took more than half of
    planning's CPU (measured: 12.6 -> 5.6 us per dispositioned loan).
    """
    with gc_paused():
        return _plan(records)


def _plan(records: Iterable[Record]) -> Plan:
    result = Plan()
    for record in records:
        try:
            _add(result, record)
            for hook in hooks():
                if rows := hook.plan(record):
                    result.hooked.setdefault(hook.name, []).extend(rows)
        except (
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            ValidationError,
            msgspec.MsgspecError,
        ) as error:
            result.rejected.append(Rejected(record, f"{type(error).__name__}: {error}"[:2000]))
    return result


def _add(result: Plan, record: Record) -> None:
    if record.value is None:
        raise ValueError("record without a value")
    if record.topic == topics.RUNS.name:
        event = decode_union(record.value, RUN_EVENT)
        result.run_events.append(event)
        result.consumed.append((record.topic, event.event_type, 0))
        if isinstance(event, OutputsWritten | RunCompleted | RunDecided):
            result.reports.extend(_report_rows(event))
    elif record.topic in STAGE_OF_TOPIC:
        stage = STAGE_OF_TOPIC[record.topic]
        if stage == "dispositioned":
            rows = dispositioned_rows(record.value)
            result.dispositioned.append(rows)
            seen = BatchSeen(
                UUID(rows.run_id), stage, rows.batch_seq, rows.stats["loans"], record.timestamp
            )
        else:
            seen = _counted(record, stage)
        result.batches.append(seen)
        result.consumed.append((record.topic, f"loans.{stage}", seen.loan_count))
    elif record.topic == topics.DEAD_LETTERS.name:
        result.dead_letters.append(decode(record.value, DeadLetter))
        result.consumed.append((record.topic, "dead_letter", 0))
    elif record.topic in FOLDS:
        fold = FOLDS[record.topic]
        item = fold.decode(record.partition, record.offset, record.value)
        result.folded.setdefault(record.topic, []).append(item)
        result.consumed.append((record.topic, fold.event_type(item), 0))
    elif record.topic == topics.LOAN_TAPES.name:
        message = orjson.loads(record.value)
        _tape(result.tapes, message)
        result.consumed.append((record.topic, f"tape.{message['kind']}", 0))


def _report_rows(event: OutputsWritten | RunCompleted | RunDecided) -> list[tuple[Any, ...]]:
    reports = (event.report,) if isinstance(event, RunDecided) else event.reports
    return [
        (event.run_id, r.key, r.storage_key, r.uri, r.sha256, r.size, r.rows, event.occurred_at)
        for r in reports
    ]


def _counted(record: Record, stage: Stage) -> BatchSeen:
    """A batch counted from its key and `loan-count` header; the value only when they lack."""
    headers = dict(record.headers)
    count = headers.get("loan-count")
    key = (record.key or b"").decode()
    run_text, _, seq_text = key.rpartition(":")
    if count is None or not run_text:
        body = orjson.loads(record.value or b"")
        return BatchSeen(
            UUID(body["run_id"]),
            stage,
            int(body["batch_seq"]),
            len(body["events"]),
            record.timestamp,
        )
    return BatchSeen(UUID(run_text), stage, int(seq_text), int(count.decode()), record.timestamp)


def _tape(tapes: dict[str, TapeSeen], message: Mapping[str, Any]) -> None:
    tape_id = str(message["tape_id"])
    seen = tapes.setdefault(tape_id, TapeSeen(tape_id))
    if message["kind"] == "row":
        seen.max_row = max(seen.max_row, int(message["row"]))
    elif message["kind"] == "end":
        seen.expected_rows = int(message["rows"])
        seen.pdate = str(message["pdate"])
        seen.irr_target = Decimal(str(message.get("irr_target", DEFAULT_IRR_TARGET)))
        seen.sales_team_id = message.get("sales_team_id")
    else:
        raise ValueError(f"unknown tape message kind {message['kind']!r}")
