"""Turning dispositioned loan batches into read-model rows, decoded by the one wire codec.

A batch is decoded and validated as `contracts.wire.DispositionedBatch` (msgspec, the same types
every worker uses), so the projector reads exactly what the contract says and cannot drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from contracts.codec import decode, dumps
from contracts.wire import DispositionedBatch
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
    """Everything one dispositioned batch adds: loan facts, exceptions and per-batch sums."""

    run_id: str
    batch_seq: int
    loans: list[tuple[Any, ...]] = field(default_factory=list)
    exceptions: list[tuple[Any, ...]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    exception_counts: dict[tuple[str, str], int] = field(default_factory=dict)


def dispositioned_rows(value: bytes) -> DispositionedRows:
    """Rows in LOAN_COLUMNS / EXCEPTION_COLUMNS order, and sums, of one batch's JSON value.

    Raises ValueError (msgspec.ValidationError, msgspec.DecodeError) for a malformed batch.
    """
    batch = decode(value, DispositionedBatch)
    run_id = str(batch.run_id)
    team = batch.params.sales_team_id
    rows = DispositionedRows(run_id, batch.batch_seq)
    loans, exceptions, counts = rows.loans, rows.exceptions, rows.exception_counts
    by_disposition = dict.fromkeys(DISPOSITIONS, 0)
    present = valid420 = unique = passed = exceptions_total = 0
    dq_sum = Decimal(0)
    for event in batch.events:
        loan, fields, quality = event.loan, event.loan.fields, event.quality
        disposition = event.disposition
        duplicate, pricing = loan.duplicate_of, event.pricing
        loans.append(
            (
                run_id,
                loan.seq,
                loan.loan_id,
                team,
                loan.source_file,
                loan.row,
                *msgspec.structs.astuple(fields),
                loan.invalid,
                dumps(loan.extra).decode() if loan.extra else "{}",
                duplicate.source_file if duplicate else None,
                duplicate.row if duplicate else None,
                disposition,
                pricing.pricing_spread if pricing else None,
                pricing.final_price if pricing else None,
                len(event.exceptions),
                str(quality.dq_score),
                event.rule_set_version,
            )
        )
        for ordinal, exc in enumerate(event.exceptions):
            exceptions.append(
                (
                    run_id,
                    loan.seq,
                    ordinal,
                    loan.loan_id,
                    team,
                    fields.seller_loan_number,
                    loan.source_file,
                    loan.row,
                    exc.exception_type,
                    exc.category,
                    exc.severity,
                    exc.message,
                    exc.rejection_criteria,
                    disposition,
                )
            )
            key = (exc.exception_type, exc.severity)
            counts[key] = counts.get(key, 0) + 1
        by_disposition[disposition] += 1
        exceptions_total += len(event.exceptions)
        present += quality.present_fields
        valid420 += validity_420(quality.numeric_present, quality.numeric_valid)
        unique += quality.unique
        passed += quality.rules_passed
        dq_sum += quality.dq_score
    rows.stats = {
        "loans": len(loans),
        **by_disposition,
        "exceptions": exceptions_total,
        "present_fields": present,
        "validity_420": valid420,
        "unique_loans": unique,
        "rules_passed": passed,
        "dq_score": dq_sum,
    }
    return rows
