"""The four report CSVs, written as a stream in tape order (SPEC §3.8).

Writing is two steps, so reporting can do the per-loan work as batches arrive: `render` turns one
dispositioned loan into its report rows, already CSV text, and the facts the exception summary
needs; `ReportWriter` takes rendered loans in tape order, appends each loan's text to its report
and writes the summary at the end. `write_reports` does both for loans in hand.
"""

import csv
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from typing import BinaryIO, NamedTuple
from uuid import UUID

from contracts.loans import LOAN_FIELDS, NUMERIC_FIELDS, Disposition
from contracts.numbers import finite_decimal
from contracts.runs import REPORT_KEYS, ReportKey
from contracts.wire import LoanDispositioned
from services.common.cells import FORMULA_PREFIXES, guard
from services.reporting.domain import (
    SUMMARY_HEADER,
    ExceptionFacts,
    ExceptionSummary,
    exception_facts,
)

LOAN_COLUMNS: tuple[str, ...] = (*LOAN_FIELDS, "disposition", "pricing_spread", "final_price")
REJECTION_COLUMNS: tuple[str, ...] = (
    *LOAN_COLUMNS,
    "exception_type",
    "severity",
    "message",
    "rejection_criteria",
)
REPORT_OF: dict[Disposition, ReportKey] = {
    "to_purchase": "purchase_tape",
    "projected": "projected_tape",
    "rejected": "rejection_report",
}


_FIELD_VALUES = attrgetter(*LOAN_FIELDS)
# A cell after the first starts like a formula when one of these is in the joined fields.
_FORMULA_AFTER_COMMA = tuple("," + prefix for prefix in FORMULA_PREFIXES)
_PLAIN_COMMAS = len(LOAN_COLUMNS) - 1


def plain_row(loan: LoanDispositioned) -> str | None:
    """The loan's one report row as `loan_cells` and csv.writer write it, when none of its cells
    needs quoting (a quote, a line break or a comma in it) nor its loan fields a guard (a cell
    starting like a formula): most loans. None when one might; then those two write it."""
    values = _FIELD_VALUES(loan.loan.fields)
    try:
        fields = ",".join(values)
    except TypeError:  # a missing value: an empty cell
        fields = ",".join(["" if value is None else value for value in values])
    if fields.startswith(FORMULA_PREFIXES):
        return None
    for formula in _FORMULA_AFTER_COMMA:  # `in` a time: faster than a regular expression
        if formula in fields:
            return None
    pricing = loan.pricing
    if pricing is None:
        row = f"{fields},{loan.disposition},,"
    else:
        row = f"{fields},{loan.disposition},{pricing.pricing_spread},{pricing.final_price}"
    if row.count(",") != _PLAIN_COMMAS or '"' in row or "\r" in row or "\n" in row:
        return None
    return row + "\r\n"


def loan_cells(loan: LoanDispositioned) -> list[str]:
    """A loan's cells in LOAN_COLUMNS order: parsed numbers verbatim, other text guarded."""
    record = loan.loan
    fields, invalid = record.fields, record.invalid
    # Most cells start like no formula: that check is inline rather than a call a cell.
    cells: list[str] = []
    for name in LOAN_FIELDS:
        value = getattr(fields, name)
        if value is None:
            cells.append("")
        elif value.startswith(FORMULA_PREFIXES):
            cells.append(_field_cell(name, value, invalid))
        else:
            cells.append(value)
    pricing = loan.pricing
    cells.append(loan.disposition)
    cells.append("" if pricing is None else pricing.pricing_spread)
    cells.append("" if pricing is None else pricing.final_price)
    return cells


class RenderedLoan(NamedTuple):
    """One loan as the reports need it: its rows as CSV text and its exceptions' facts.

    A NamedTuple: built once a loan, and a frozen dataclass's checked `__init__` costs more.
    """

    loan_id: UUID
    seq: int
    disposition: Disposition
    text: str
    exceptions: tuple[ExceptionFacts, ...]


def render(loan: LoanDispositioned) -> RenderedLoan:
    """A loan's report rows (CRLF-terminated CSV, quoted only when needed) and summary facts."""
    return render_all((loan,))[0]


def render_all(loans: Iterable[LoanDispositioned]) -> list[RenderedLoan]:
    """Each loan rendered as `render` does, through one CSV writer (a writer a loan costs more)."""
    lines = _Lines()
    writer = csv.writer(lines)
    parts = lines.parts
    rendered = []
    for loan in loans:
        disposition = loan.disposition
        text = None if disposition == "rejected" else plain_row(loan)
        if text is None:
            cells = loan_cells(loan)
            if disposition == "rejected":
                for exception in loan.exceptions:
                    writer.writerow(
                        [
                            *cells,
                            guard(exception.exception_type),
                            guard(exception.severity),
                            guard(exception.message),
                            guard(exception.rejection_criteria),
                        ]
                    )
            else:
                writer.writerow(cells)
            text = "".join(parts)
            parts.clear()
        record, exceptions = loan.loan, loan.exceptions
        facts = exception_facts(exceptions) if exceptions else ()
        rendered.append(RenderedLoan(record.loan_id, record.seq, disposition, text, facts))
    return rendered


class ReportWriter:
    """Writes the four reports to binary sinks as loans arrive; the summary on `finish`."""

    def __init__(self, sinks: Mapping[ReportKey, BinaryIO]) -> None:
        missing = [key for key in REPORT_KEYS if key not in sinks]
        if missing:
            raise ValueError(f"no sink for reports: {', '.join(missing)}")
        self._sinks = dict(sinks)
        self._rows: dict[ReportKey, int] = dict.fromkeys(REPORT_KEYS, 0)
        self._summary = ExceptionSummary()
        self._last_seq = 0
        self._run_id: UUID | None = None
        self._finished = False
        header = _Lines()
        writer = csv.writer(header)
        writer.writerow(LOAN_COLUMNS)
        for key in ("purchase_tape", "projected_tape"):
            self._sinks[key].write(header.parts[0].encode())
        writer.writerow(REJECTION_COLUMNS)
        self._sinks["rejection_report"].write(header.parts[1].encode())

    def add(self, loan: LoanDispositioned) -> None:
        """Write one loan's rows; loans of one run must come in tape order (rising `seq`)."""
        if self._run_id not in (None, loan.run_id):
            raise ValueError(f"loan of run {loan.run_id} in the reports of run {self._run_id}")
        self.add_rendered(render(loan))
        self._run_id = loan.run_id

    def add_rendered(self, loan: RenderedLoan) -> None:
        """Write one rendered loan's rows, in tape order (rising `seq`)."""
        self.add_text(loan.seq, loan.disposition, loan.text, loan.exceptions)

    def add_text(
        self, seq: int, disposition: Disposition, text: str, exceptions: Sequence[ExceptionFacts]
    ) -> None:
        """Write a loan's rendered rows given as their parts (what reporting stores of it)."""
        if self._finished:
            raise ValueError("the reports are finished")
        if seq <= self._last_seq:
            raise ValueError(f"loan seq {seq} after {self._last_seq}: not tape order")
        self._last_seq = seq
        report = REPORT_OF[disposition]
        self._sinks[report].write(text.encode())
        self._rows[report] += len(exceptions) if disposition == "rejected" else 1
        self._summary.add(exceptions)

    def finish(self) -> dict[ReportKey, int]:
        """Write the exception summary; the data rows written to each report."""
        if self._finished:
            raise ValueError("the reports are finished")
        self._finished = True
        writer = csv.writer(_Utf8(self._sinks["exception_summary"]))
        writer.writerow(SUMMARY_HEADER)
        for kind, category, severity, count, criteria, message in self._summary.rows():
            row = [guard(kind), guard(category), guard(severity), str(count)]
            writer.writerow([*row, guard(criteria), guard(message)])
            self._rows["exception_summary"] += 1
        return dict(self._rows)


def write_reports(
    loans: Iterable[LoanDispositioned], sinks: Mapping[ReportKey, BinaryIO]
) -> dict[ReportKey, int]:
    """Write all four reports of loans given in tape order; the data rows of each."""
    writer = ReportWriter(sinks)
    for loan in loans:
        writer.add(loan)
    return writer.finish()


class _Lines:
    """The text file csv.writer wants, keeping each row it writes."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)


class _Utf8:
    """The text file csv.writer wants, over a binary sink, encoding UTF-8 as it goes."""

    __slots__ = ("_sink",)

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink

    def write(self, text: str) -> int:
        return self._sink.write(text.encode("utf-8"))


def _field_cell(name: str, value: str, invalid: tuple[str, ...]) -> str:
    """A cell that starts like a formula: parsed numbers verbatim, other text guarded."""
    # Parsed numbers are canonical text and never altered, even `-0.5`; only text is guarded.
    if name in NUMERIC_FIELDS and name not in invalid and _is_number(value):
        return value
    return "'" + value


def _is_number(text: str) -> bool:
    return finite_decimal(text) is not None
