"""From loan-fact and exception rows to API responses (no queries, no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.gateway.facts.schemas import ExceptionResponse, LoanResponse


def sla_age_seconds(row: Any, now: datetime) -> int | None:
    """Whole seconds since the exception was raised (its run's creation) until it was closed,
    or until `now` while it is open; None while the run's creation time is unknown."""
    if row.created_at is None:
        return None
    end = row.closed_at or now
    return max(0, int((end - row.created_at).total_seconds()))


def exception_response(row: Any, now: datetime) -> ExceptionResponse:
    """One exception with its lifecycle status and SLA age."""
    return ExceptionResponse(
        exception_id=row.exception_id,
        status=row.status,
        assignee=row.assignee,
        sla_age_seconds=sla_age_seconds(row, now),
        status_updated_at=row.status_updated_at,
        run_id=row.run_id,
        loan_id=row.loan_id,
        seller_loan_number=row.seller_loan_number,
        source_file=row.source_file,
        row=row.row,
        exception_type=row.exception_type,
        category=row.category,
        severity=row.severity,
        message=row.message,
        rejection_criteria=row.rejection_criteria,
        disposition=row.disposition,
        created_at=row.created_at,
    )


def loan_response(row: Any) -> LoanResponse:
    """One loan fact."""
    duplicate = f"{row.duplicate_of_file}:{row.duplicate_of_row}" if row.duplicate_of_file else None
    return LoanResponse(
        loan_id=row.loan_id,
        run_id=row.run_id,
        seq=row.seq,
        source_file=row.source_file,
        row=row.row,
        seller_loan_number=row.seller_loan_number,
        loan_amount=row.loan_amount,
        note_rate=row.note_rate,
        ltv_ratio=row.ltv_ratio,
        dti_ratio=row.dti_ratio,
        credit_score=row.credit_score,
        property_type=row.property_type,
        occupancy_status=row.occupancy_status,
        loan_purpose=row.loan_purpose,
        purchase_price=row.purchase_price,
        appraisal_value=row.appraisal_value,
        extra=row.extra,
        invalid_fields=list(row.invalid),
        duplicate_of=duplicate,
        disposition=row.disposition,
        pricing_spread=row.pricing_spread,
        final_price=row.final_price,
        exceptions_count=row.exceptions_count,
        dq_score=row.dq_score,
        rule_set_version=row.rule_set_version,
    )
