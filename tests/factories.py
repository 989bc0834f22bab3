"""Builders of contracts for tests: sensible, eligible defaults, any field overridable.

A `None` field value means missing. Events get deterministic ids, as the services give them.
"""

import io
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from contracts.ids import event_id, loan_id
from contracts.loans import (
    Category,
    Disposition,
    LoanDispositioned,
    LoanEvaluated,
    LoanException,
    LoanFields,
    LoanIngested,
    LoanPriced,
    LoanRecord,
    Pricing,
    QualityCounts,
    RowRef,
    RunParams,
    Severity,
)
from contracts.runs import REPORT_KEYS, ReportKey
from services.pricing.domain import price
from services.reporting.domain import disposition
from services.rules.domain import RuleSet, evaluate, load_rule_set

RUN_ID = UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
OCCURRED_AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
IRR_TARGET = Decimal("8.05")

ELIGIBLE: Mapping[str, str] = {
    "seller_loan_number": "LN0000001",
    "loan_amount": "250000",
    "note_rate": "7.786",
    "ltv_ratio": "80.00",
    "dti_ratio": "35.0",
    "credit_score": "720",
    "property_type": "SFR",
    "occupancy_status": "Primary",
    "loan_purpose": "Purchase",
    "purchase_price": "312500",
    "appraisal_value": "315000",
}


def loan_fields(**overrides: str | None) -> LoanFields:
    """The fields of an eligible loan, with overrides (`None` is missing)."""
    return LoanFields(**{**ELIGIBLE, **overrides})


def loan_record(
    *,
    seq: int = 1,
    row: int | None = None,
    source_file: str = "tape.csv",
    run_id: UUID = RUN_ID,
    invalid: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
    duplicate_of: RowRef | None = None,
    **fields: str | None,
) -> LoanRecord:
    """A normalised loan; its row defaults to its seq and its id follows SPEC §2."""
    at_row = seq if row is None else row
    return LoanRecord(
        loan_id=loan_id(run_id, source_file, at_row),
        seq=seq,
        source_file=source_file,
        row=at_row,
        fields=loan_fields(**fields),
        invalid=tuple(invalid),
        extra=dict(extra or {}),
        duplicate_of=duplicate_of,
    )


def loan_exception(
    exception_type: str = "dti_ratio",
    *,
    category: Category = "credit",
    severity: Severity = "hard",
    message: str = "DTI ratio exceeds maximum of 50%",
    rejection_criteria: str = "notebook.dti_exceeds_maximum",
) -> LoanException:
    """An exception; by default the hard DTI one."""
    return LoanException(
        exception_type=exception_type,
        category=category,
        severity=severity,
        message=message,
        rejection_criteria=rejection_criteria,
    )


def quality_counts(
    *,
    present_fields: int = 11,
    numeric_present: int = 7,
    numeric_valid: int = 7,
    unique: bool = True,
    rules_passed: int = 10,
    dq_score: Decimal = Decimal("100.00"),
) -> QualityCounts:
    """Quality counts; by default those of a complete, valid, eligible loan."""
    return QualityCounts(
        present_fields=present_fields,
        numeric_present=numeric_present,
        numeric_valid=numeric_valid,
        unique=unique,
        rules_passed=rules_passed,
        dq_score=dq_score,
    )


def run_params(
    *,
    irr_target: Decimal = IRR_TARGET,
    pdate: date = date(2026, 11, 23),
    sales_team_id: str | None = None,
) -> RunParams:
    """A run's parameters."""
    return RunParams(irr_target=irr_target, pdate=pdate, sales_team_id=sales_team_id)


def _envelope(event_type: str, loan: LoanRecord, run_id: UUID, producer: str) -> dict[str, object]:
    return {
        "event_id": event_id(event_type, run_id, loan.loan_id),
        "run_id": run_id,
        "occurred_at": OCCURRED_AT,
        "producer": producer,
    }


def loan_ingested(loan: LoanRecord | None = None, *, run_id: UUID = RUN_ID) -> LoanIngested:
    """The ingest event of a loan."""
    record = loan_record() if loan is None else loan
    return LoanIngested(**_envelope("loan.ingested", record, run_id, "ingest"), loan=record)


def loan_evaluated(
    loan: LoanRecord | None = None,
    *,
    exceptions: Iterable[LoanException] = (),
    quality: QualityCounts | None = None,
    rule_set_version: str = "2026.11.1",
    run_id: UUID = RUN_ID,
) -> LoanEvaluated:
    """The rules event of a loan, with whatever outcome it is given."""
    record = loan_record() if loan is None else loan
    return LoanEvaluated(
        **_envelope("loan.evaluated", record, run_id, "rules"),
        loan=record,
        exceptions=tuple(exceptions),
        quality=quality_counts() if quality is None else quality,
        rule_set_version=rule_set_version,
    )


def loan_priced(
    loan: LoanRecord | None = None,
    *,
    exceptions: Iterable[LoanException] = (),
    quality: QualityCounts | None = None,
    pricing: Pricing | None = None,
    rule_set_version: str = "2026.11.1",
    run_id: UUID = RUN_ID,
) -> LoanPriced:
    """The pricing event of a loan, with whatever outcome it is given."""
    record = loan_record() if loan is None else loan
    return LoanPriced(
        **_envelope("loan.priced", record, run_id, "pricing"),
        loan=record,
        exceptions=tuple(exceptions),
        quality=quality_counts() if quality is None else quality,
        rule_set_version=rule_set_version,
        pricing=pricing,
    )


def loan_dispositioned(
    loan: LoanRecord | None = None,
    *,
    exceptions: Iterable[LoanException] = (),
    quality: QualityCounts | None = None,
    pricing: Pricing | None = None,
    disposition: Disposition = "to_purchase",
    rule_set_version: str = "2026.11.1",
    run_id: UUID = RUN_ID,
) -> LoanDispositioned:
    """The final event of a loan, with whatever outcome it is given."""
    record = loan_record() if loan is None else loan
    return LoanDispositioned(
        **_envelope("loan.dispositioned", record, run_id, "reporting"),
        loan=record,
        exceptions=tuple(exceptions),
        quality=quality_counts() if quality is None else quality,
        rule_set_version=rule_set_version,
        pricing=pricing,
        disposition=disposition,
    )


def process_loan(
    loan: LoanRecord,
    *,
    rule_set: RuleSet | None = None,
    irr_target: Decimal = IRR_TARGET,
    run_id: UUID = RUN_ID,
) -> LoanDispositioned:
    """A loan through the pure chain the services run: evaluate, price, disposition."""
    rules = load_rule_set() if rule_set is None else rule_set
    evaluation = evaluate(loan, rules)
    pricing = price(evaluation.exceptions, loan.fields.note_rate, irr_target)
    return loan_dispositioned(
        loan,
        exceptions=evaluation.exceptions,
        quality=evaluation.quality,
        pricing=pricing,
        disposition=disposition(evaluation.exceptions, pricing),
        rule_set_version=rules.version,
        run_id=run_id,
    )


def report_sinks() -> dict[ReportKey, io.BytesIO]:
    """One in-memory binary sink per report."""
    return {key: io.BytesIO() for key in REPORT_KEYS}
