"""Recording a correction: checked against the loan, published on `corrections.v1`.

The gateway never writes the read model itself: the projector builds it from the log, so the
API answers with the correction as the event it just published makes it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.corrections import LoanCorrected
from contracts.ids import event_id
from contracts.loans import LOAN_FIELDS
from contracts.topics import CORRECTIONS
from services.gateway.corrections.schemas import CorrectionRequest, CorrectionResponse
from services.gateway.deps import Publisher
from services.gateway.errors import BadRequest, Forbidden, Unavailable
from services.gateway.governance.scope import visible_loan
from services.gateway.identity.principal import Principal

logger = logging.getLogger(__name__)
PRODUCER = "gateway"
CORRECTING_ROLES = frozenset({"admin", "analyst", "senior_analyst"})


def current_value(loan: Any, field: str) -> str | None:
    """The loan's value of a field: a loan field's column or a kept column's text."""
    if field in LOAN_FIELDS:
        return getattr(loan, field)
    return (loan.extra or {}).get(field)


def check_field(loan: Any, field: str) -> None:
    """400 unless the field is a loan field or one of the loan's kept columns."""
    if field not in LOAN_FIELDS and field not in (loan.extra or {}):
        raise BadRequest(f"Field {field!r} is neither a loan field nor one of this loan's columns")


async def record_correction(
    session: AsyncSession,
    publisher: Publisher,
    user: Principal,
    loan_id: UUID,
    body: CorrectionRequest,
) -> CorrectionResponse:
    """Publish a correction of a loan's field; the archived input is never touched."""
    loan = await visible_loan(session, user, loan_id)
    if user.role not in CORRECTING_ROLES:
        raise Forbidden("Only analysts and admins correct records")
    check_field(loan, body.field)
    correction_id = uuid4()
    event = LoanCorrected(
        event_id=event_id("loan.corrected", loan.run_id, correction_id),
        run_id=loan.run_id,
        occurred_at=datetime.now(UTC),
        producer=PRODUCER,
        correction_id=correction_id,
        loan_id=loan_id,
        source_file=loan.source_file,
        row=loan.row,
        seller_loan_number=loan.seller_loan_number,
        sales_team_id=loan.sales_team_id,
        field=body.field,
        value=body.value,
        previous=current_value(loan, body.field),
        reason=body.reason,
        corrected_by=user.username,
    )
    try:
        await publisher.publish(CORRECTIONS, str(loan_id), event)
    except Exception as error:
        logger.error("publish failed", extra={"loan_id": str(loan_id)})
        raise Unavailable("The event log is not reachable; try again") from error
    logger.info(
        "loan corrected",
        extra={"loan_id": str(loan_id), "field": body.field, "run_id": str(loan.run_id)},
    )
    return response_of_event(event)


def response_of_event(event: LoanCorrected) -> CorrectionResponse:
    """The correction as the projection will show it."""
    return CorrectionResponse(
        **event.model_dump(include=set(CorrectionResponse.model_fields) - {"corrected_at"}),
        corrected_at=event.occurred_at,
    )


def response_of_row(row: Any) -> CorrectionResponse:
    """A projected correction."""
    return CorrectionResponse(
        **{name: getattr(row, name) for name in CorrectionResponse.model_fields}
    )
