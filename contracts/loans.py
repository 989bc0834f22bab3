"""Loan events and the batches they travel in (SPEC §2: one Kafka record = one batch)."""

from datetime import date
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import Field

from contracts.base import Contract, Envelope
from contracts.numbers import DEFAULT_IRR_TARGET

LOAN_FIELDS: tuple[str, ...] = (
    "seller_loan_number",
    "loan_amount",
    "note_rate",
    "ltv_ratio",
    "dti_ratio",
    "credit_score",
    "property_type",
    "occupancy_status",
    "loan_purpose",
    "purchase_price",
    "appraisal_value",
)
NUMERIC_FIELDS: tuple[str, ...] = (
    "loan_amount",
    "note_rate",
    "ltv_ratio",
    "dti_ratio",
    "credit_score",
    "purchase_price",
    "appraisal_value",
)

Disposition = Literal["to_purchase", "projected", "rejected"]
Severity = Literal["hard", "soft"]
Category = Literal["data_quality", "credit", "collateral", "compliance", "pricing"]


class RowRef(Contract):
    """Where a loan stands in its run's tape."""

    source_file: str = Field(examples=["tape.csv"])
    row: int = Field(ge=1, description="Data row number within the file, from 1.")


class LoanFields(Contract):
    """The eleven loan fields as text (SPEC §3.1); `None` is a missing value.

    A numeric field that parsed holds its canonical text (`str(Decimal(cleaned))`); one that did
    not holds its trimmed original text and is named in `LoanRecord.invalid`.
    """

    seller_loan_number: str | None = None
    loan_amount: str | None = None
    note_rate: str | None = None
    ltv_ratio: str | None = None
    dti_ratio: str | None = None
    credit_score: str | None = None
    property_type: str | None = None
    occupancy_status: str | None = None
    loan_purpose: str | None = None
    purchase_price: str | None = None
    appraisal_value: str | None = None


class LoanRecord(Contract):
    """One normalised loan: what ingest read, with its place in the tape."""

    loan_id: UUID = Field(description="uuid5(NS, f'{run_id}/{source_file}/{row}').")
    seq: int = Field(ge=1, description="Position in the run's tape order, from 1.")
    source_file: str
    row: int = Field(ge=1)
    fields: LoanFields
    invalid: tuple[str, ...] = Field(
        default=(), description="Numeric loan fields whose value is invalid, in field order."
    )
    extra: dict[str, str] = Field(
        default_factory=dict, description="Other columns: normalised name to trimmed text."
    )
    duplicate_of: RowRef | None = Field(
        default=None, description="First occurrence of this seller loan number in the run."
    )


class LoanException(Contract):
    """One validation or eligibility exception (SPEC §3.2, §3.3)."""

    exception_type: str = Field(examples=["dti_ratio"])
    category: Category
    severity: Severity
    message: str
    rejection_criteria: str = Field(examples=["notebook.dti_exceeds_maximum"])


class QualityCounts(Contract):
    """The counts behind a loan's data-quality dimensions (SPEC §3.4), kept exact for run means."""

    present_fields: int = Field(ge=0, le=11, description="Present loan fields (of 11).")
    numeric_present: int = Field(ge=0, le=7)
    numeric_valid: int = Field(ge=0, le=7)
    unique: bool
    rules_passed: int = Field(ge=0, le=10, description="0 when eligibility was skipped.")
    dq_score: Decimal = Field(description="100 x mean of the four, half-even to 2 decimals.")


class Pricing(Contract):
    """Spread and price as written in the reports: exactly 4 decimals (SPEC §3.5)."""

    pricing_spread: str = Field(examples=["-0.2640"])
    final_price: str = Field(examples=["99.3400"])


class RunParams(Contract):
    """A run's parameters, carried by every batch so rules and pricing stay stateless."""

    irr_target: Decimal = Field(default=DEFAULT_IRR_TARGET, gt=0, lt=100)
    pdate: date
    sales_team_id: str | None = None
    # Additive and optional: left off the wire when unset, so a run that does not ask for a
    # version serialises exactly as before and its consumers evaluate with their current one.
    rule_set_version: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Rule-set version to evaluate with (SPEC §7 what-if); unset: the current.",
        examples=["2026.12.1"],
    )


class LoanIngested(Envelope):
    """A loan read from a tape and normalised (ingest)."""

    event_type: Literal["loan.ingested"] = "loan.ingested"
    loan: LoanRecord


class LoanEvaluated(Envelope):
    """A loan's validation and eligibility outcome (rules)."""

    event_type: Literal["loan.evaluated"] = "loan.evaluated"
    loan: LoanRecord
    exceptions: tuple[LoanException, ...] = ()
    quality: QualityCounts
    rule_set_version: str = Field(examples=["2026.11.1"])


class LoanPriced(Envelope):
    """A loan with its price, or `pricing=None` when it may not be priced (pricing)."""

    event_type: Literal["loan.priced"] = "loan.priced"
    loan: LoanRecord
    exceptions: tuple[LoanException, ...] = ()
    quality: QualityCounts
    rule_set_version: str
    pricing: Pricing | None = None


class LoanDispositioned(Envelope):
    """A loan's final disposition (reporting): everything the read models need about it."""

    event_type: Literal["loan.dispositioned"] = "loan.dispositioned"
    loan: LoanRecord
    exceptions: tuple[LoanException, ...] = ()
    quality: QualityCounts
    rule_set_version: str
    pricing: Pricing | None = None
    disposition: Disposition


class _Batch(Contract):
    """Up to LOAN_BATCH_SIZE loan events of one run, in tape order, keyed `{run_id}:{batch_seq}`."""

    schema_version: int = 1
    run_id: UUID
    batch_seq: int = Field(ge=0, description="The batch's number in its run, from 0.")
    params: RunParams


class IngestedBatch(_Batch):
    batch_type: Literal["loans.ingested"] = "loans.ingested"
    events: tuple[LoanIngested, ...]


class EvaluatedBatch(_Batch):
    batch_type: Literal["loans.evaluated"] = "loans.evaluated"
    events: tuple[LoanEvaluated, ...]


class PricedBatch(_Batch):
    batch_type: Literal["loans.priced"] = "loans.priced"
    events: tuple[LoanPriced, ...]


class DispositionedBatch(_Batch):
    batch_type: Literal["loans.dispositioned"] = "loans.dispositioned"
    events: tuple[LoanDispositioned, ...]
