"""The producer contract on `loan-tapes.v1` (SPEC §2): rows, then an end marker."""

import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from contracts.base import Contract
from contracts.numbers import DEFAULT_IRR_TARGET


class TapeRow(Contract):
    """One tape row: column names as a file's header would have them, to cell text."""

    kind: Literal["row"] = "row"
    tape_id: str = Field(min_length=1, examples=["T-2026-11-22-A"])
    row: int = Field(ge=1, description="Row number, from 1.")
    fields: dict[str, str | None] = Field(
        examples=[{"seller_loan_number": "L-1", "loan_amount": "250000"}]
    )


class TapeEnd(Contract):
    """The end marker: how many rows the tape has, and the run's parameters."""

    kind: Literal["end"] = "end"
    tape_id: str = Field(min_length=1, examples=["T-2026-11-22-A"])
    rows: int = Field(ge=0, examples=[1000])
    pdate: date = Field(examples=["2026-11-23"])
    irr_target: Decimal = Field(default=DEFAULT_IRR_TARGET, gt=0, lt=100, examples=[8.05])
    sales_team_id: str | None = None


TapeMessage = Annotated[TapeRow | TapeEnd, Field(discriminator="kind")]
TAPE_MESSAGE = TypeAdapter(TapeMessage)


def decode_tape_message(data: bytes | str) -> TapeRow | TapeEnd:
    """A producer record's value as a tape message; raises pydantic's ValidationError.

    pydantic-core reads a JSON number for a Decimal through a binary float, so an end marker
    (one per tape) is read again with every number as its exact decimal text: `irr_target` sent
    as `8.050000000000000000001` stays exactly that. Rows carry text only and take the fast path.
    """
    message: TapeRow | TapeEnd = TAPE_MESSAGE.validate_json(data)
    if isinstance(message, TapeEnd):
        exact = json.loads(data, parse_float=Decimal)
        message = TapeEnd.model_validate(exact)
    return message
