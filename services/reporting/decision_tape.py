"""The decision tape (SPEC §8): the loans a decided run buys, one CSV row each, in tape order.

A loan is bought when its final decision is an approval: `auto_approve` (the model's routing),
`analyst_approve` or `analyst_approve_with_conditions` (a person's decision, an override only
once a second person approved it). The file follows §3.8: UTF-8, a header row, the csv module's
default dialect (`\\r\\n`), the fourteen loan columns exactly as the purchase and projected tapes
write them, then the decision's columns:

| column | content |
|---|---|
| `decision_type` | `auto_approve`, `analyst_approve` or `analyst_approve_with_conditions` |
| `score` | the model score the decision saw, 0-1000 (higher is safer) |
| `terms` | the approval's terms, empty when none |
| `conditions` | each condition as `type: description`, joined by `; `, in the decision's order |
| `decided_by` | the deciding analyst's user id; empty for the machine's decisions |
| `override_approved_by` | for an override, the second person's user id; else empty |
| `decided_at` | when the decision became final: UTC to the second (`2026-12-07T09:30:00Z`) |

Text a person typed (terms, conditions) is guarded against formula injection like every other
report cell. Every value comes from the log, so writing the tape again gives the same bytes.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from services.common.cells import guard
from services.reporting.reports import LOAN_COLUMNS

DECISION_COLUMNS: tuple[str, ...] = (
    "decision_type",
    "score",
    "terms",
    "conditions",
    "decided_by",
    "override_approved_by",
    "decided_at",
)
DECISION_TAPE_COLUMNS: tuple[str, ...] = (*LOAN_COLUMNS, *DECISION_COLUMNS)
BOUGHT: frozenset[str] = frozenset(
    {"auto_approve", "analyst_approve", "analyst_approve_with_conditions"}
)
CONDITION_SEPARATOR = "; "


@dataclass(frozen=True, slots=True)
class FinalDecision:
    """A loan's final decision, as the decision tape shows it."""

    decision_type: str
    score: int
    terms: str | None
    conditions: Sequence[tuple[str, str]]
    """(condition_type, description) in the decision's order."""
    decided_by: UUID | None
    approved_by: UUID | None
    decided_at: datetime


class _Line:
    """The text file csv.writer wants, keeping the one row it writes."""

    __slots__ = ("text",)

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)


def _csv(cells: Sequence[str]) -> str:
    line = _Line()
    csv.writer(line).writerow(cells)
    return line.text


def header() -> str:
    """The decision tape's header row (CRLF-terminated)."""
    return _csv(DECISION_TAPE_COLUMNS)


def timestamp(moment: datetime) -> str:
    """A moment as the tape writes it: UTC, ISO 8601 to the second, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decision_cells(decision: FinalDecision) -> list[str]:
    """The decision's cells in DECISION_COLUMNS order."""
    conditions = CONDITION_SEPARATOR.join(
        f"{kind}: {description}" for kind, description in decision.conditions
    )
    return [
        decision.decision_type,
        str(decision.score),
        guard(decision.terms or ""),
        guard(conditions),
        "" if decision.decided_by is None else str(decision.decided_by),
        "" if decision.approved_by is None else str(decision.approved_by),
        timestamp(decision.decided_at),
    ]


def tape_row(report_row: str, decision: FinalDecision) -> str:
    """A bought loan's row: its purchase or projected tape row (one CRLF-terminated CSV line of
    the loan columns, as reporting stored it) followed by its decision's cells."""
    if not report_row.endswith("\r\n"):
        raise ValueError("a loan's report row must be one CRLF-terminated CSV line")
    return report_row[:-2] + "," + _csv(decision_cells(decision))
