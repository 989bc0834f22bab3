"""From loan-fact and exception rows to API responses (no queries, no I/O)."""

from __future__ import annotations

from typing import Any

from services.gateway.facts.schemas import ExceptionResponse, LoanResponse


def exception_response(row: Any) -> ExceptionResponse:
    """One exception."""
    return ExceptionResponse(
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
