"""Turning dispositioned loan batches into read-model rows.

A batch is decoded by `ProjectedBatch`: msgspec Structs holding only what the read models keep,
each field with the type and bounds of its `contracts.wire` twin (a test holds the two together),
so what the projector writes is validated as the workers validate it. The envelope fields it does
not write (event ids, times, producer) are skipped without building objects: decoding fell from
2.65 to 1.6 us a loan (CPU time, benchmarks/projector.py's batches). Topic bytes are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from asyncpg.pgproto.pgproto import UUID as PgUUID

from contracts.codec import dumps
from contracts.loans import Category, Disposition, Severity
from contracts.wire import Count, LoanFields, Position, RowRef
from services.gateway.runs.quality import validity_420
from services.gateway.tables import LOAN_FIELD_COLUMNS

LOAN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "seq",
    "loan_id",
    "sales_team_id",
    "source_file",
    "row",
    *LOAN_FIELD_COLUMNS,
    "invalid",
    "extra",
    "duplicate_of_file",
    "duplicate_of_row",
    "disposition",
    "pricing_spread",
    "final_price",
    "exceptions_count",
    "dq_score",
    "rule_set_version",
)
EXCEPTION_COLUMNS: tuple[str, ...] = (
    "run_id",
    "seq",
    "ordinal",
    "loan_id",
    "sales_team_id",
    "seller_loan_number",
    "source_file",
    "row",
    "exception_type",
    "category",
    "severity",
    "message",
    "rejection_criteria",
    "disposition",
)
DISPOSITIONS = ("to_purchase", "projected", "rejected")


@dataclass(slots=True)
class DispositionedRows:
    """Everything one dispositioned batch adds: loan facts, exceptions and per-batch sums.

    The rows are built as COPY reads them (`loans()`, `exceptions()`), from the decoded events,
    which the collector does not track: a chunk's row tuples held from planning to writing were
    scanned by the collection that follows planning, ~1 us a loan (benchmarks/projector.py).
    """

    run_id: str
    batch_seq: int
    events: tuple[ProjectedEvent, ...] = ()
    sales_team_id: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    exception_counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def loans(self) -> Iterator[tuple[Any, ...]]:
        """The batch's loan facts, in LOAN_COLUMNS order."""
        run_id, team = self.run_id, self.sales_team_id
        for event in self.events:
            loan, quality = event.loan, event.quality
            duplicate, pricing = loan.duplicate_of, event.pricing
            yield (
                run_id,
                loan.seq,
                loan.loan_id,
                team,
                loan.source_file,
                loan.row,
                *msgspec.structs.astuple(loan.fields),
                loan.invalid,
                dumps(loan.extra).decode() if loan.extra else "{}",
                duplicate.source_file if duplicate else None,
                duplicate.row if duplicate else None,
                event.disposition,
                pricing.pricing_spread if pricing else None,
                pricing.final_price if pricing else None,
                len(event.exceptions),
                quality.dq_score,
                event.rule_set_version,
            )

    def exceptions(self) -> Iterator[tuple[Any, ...]]:
        """The batch's exceptions, in EXCEPTION_COLUMNS order."""
        run_id, team = self.run_id, self.sales_team_id
        for event in self.events:
            loan = event.loan
            for ordinal, exc in enumerate(event.exceptions):
                yield (
                    run_id,
                    loan.seq,
                    ordinal,
                    loan.loan_id,
                    team,
                    loan.fields.seller_loan_number,
                    loan.source_file,
                    loan.row,
                    exc.exception_type,
                    exc.category,
                    exc.severity,
                    exc.message,
                    exc.rejection_criteria,
                    event.disposition,
                )


class _Read(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Immutable and acyclic like `contracts.wire.Wire`; fields the projector skips are ignored."""


class ProjectedQuality(_Read, kw_only=True):
    present_fields: Annotated[int, msgspec.Meta(ge=0, le=11)]
    numeric_present: Annotated[int, msgspec.Meta(ge=0, le=7)]
    numeric_valid: Annotated[int, msgspec.Meta(ge=0, le=7)]
    unique: bool
    rules_passed: Annotated[int, msgspec.Meta(ge=0, le=10)]
    dq_score: Decimal
    """Finite: checked once on the batch's sum (a per-loan check cost 0.5 us a loan)."""


class ProjectedLoan(_Read, kw_only=True):
    loan_id: str
    """Checked with asyncpg's own UUID parser and kept as text, which COPY parses in C (a UUID
    object costs a Python `UUID.bytes` call per row there)."""
    seq: Position
    source_file: str
    row: Position
    fields: LoanFields
    invalid: tuple[str, ...] = ()
    extra: dict[str, str] = {}
    duplicate_of: RowRef | None = None


class ProjectedException(_Read, kw_only=True):
    exception_type: str
    category: Category
    severity: Severity
    message: str
    rejection_criteria: str


class ProjectedPricing(_Read, kw_only=True):
    pricing_spread: str
    final_price: str


class ProjectedEvent(_Read, kw_only=True):
    loan: ProjectedLoan
    exceptions: tuple[ProjectedException, ...] = ()
    quality: ProjectedQuality
    rule_set_version: str
    pricing: ProjectedPricing | None = None
    disposition: Disposition


class ProjectedParams(_Read, kw_only=True):
    sales_team_id: str | None = None


class ProjectedBatch(_Read, kw_only=True):
    """What the projector reads of a `contracts.wire.DispositionedBatch`."""

    batch_type: Literal["loans.dispositioned"] = "loans.dispositioned"
    run_id: UUID
    batch_seq: Count
    params: ProjectedParams
    events: tuple[ProjectedEvent, ...]


_DECODER = msgspec.json.Decoder(ProjectedBatch)


def dispositioned_rows(value: bytes) -> DispositionedRows:
    """One batch's JSON value, validated, with its sums (its rows are built when written).

    Raises ValueError (msgspec.ValidationError, msgspec.DecodeError) for a malformed batch.
    """
    batch = _DECODER.decode(value)
    rows = DispositionedRows(
        str(batch.run_id), batch.batch_seq, batch.events, batch.params.sales_team_id
    )
    counts = rows.exception_counts
    by_disposition = dict.fromkeys(DISPOSITIONS, 0)
    present = valid420 = unique = passed = exceptions_total = 0
    for event in batch.events:
        quality = event.quality
        PgUUID(event.loan.loan_id)  # ValueError unless COPY can read it as a UUID (in C, as text)
        for exc in event.exceptions:
            key = (exc.exception_type, exc.severity)
            counts[key] = counts.get(key, 0) + 1
        by_disposition[event.disposition] += 1
        exceptions_total += len(event.exceptions)
        present += quality.present_fields
        valid420 += validity_420(quality.numeric_present, quality.numeric_valid)
        unique += quality.unique
        passed += quality.rules_passed
    rows.stats = {
        "loans": len(batch.events),
        **by_disposition,
        "exceptions": exceptions_total,
        "present_fields": present,
        "validity_420": valid420,
        "unique_loans": unique,
        "rules_passed": passed,
        "dq_score": _finite_sum(event.quality.dq_score for event in batch.events),
    }
    return rows


def _finite_sum(scores: Iterable[Decimal]) -> Decimal:
    """The sum of a batch's DQ scores; ValueError if any is not a finite number."""
    try:
        total = sum(scores, Decimal(0))
    except InvalidOperation as error:  # a signalling NaN, or infinities of both signs
        raise ValueError("`dq_score` must be a finite number") from error
    if not total.is_finite():
        raise ValueError("`dq_score` must be a finite number")
    return total
