"""The four report CSVs, written as a stream in tape order (SPEC §3.8)."""

import csv
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import BinaryIO
from uuid import UUID

from contracts.loans import LOAN_FIELDS, NUMERIC_FIELDS, LoanDispositioned, LoanException
from contracts.runs import REPORT_KEYS, ReportKey
from services.reporting.domain import SUMMARY_HEADER, ExceptionSummary

LOAN_COLUMNS: tuple[str, ...] = (*LOAN_FIELDS, "disposition", "pricing_spread", "final_price")
REJECTION_COLUMNS: tuple[str, ...] = (
    *LOAN_COLUMNS,
    "exception_type",
    "severity",
    "message",
    "rejection_criteria",
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_TAPES: dict[str, ReportKey] = {"to_purchase": "purchase_tape", "projected": "projected_tape"}


def guard(text: str) -> str:
    """Text as a report writes it: prefixed with `'` when a spreadsheet would run it."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def loan_cells(loan: LoanDispositioned) -> list[str]:
    """A loan's cells in LOAN_COLUMNS order: parsed numbers verbatim, other text guarded."""
    record = loan.loan
    cells = [
        _field_cell(name, getattr(record.fields, name), record.invalid) for name in LOAN_FIELDS
    ]
    pricing = loan.pricing
    cells.append(loan.disposition)
    cells.append("" if pricing is None else pricing.pricing_spread)
    cells.append("" if pricing is None else pricing.final_price)
    return cells


class ReportWriter:
    """Writes the four reports to binary sinks as loans arrive; the summary on `finish`."""

    def __init__(self, sinks: Mapping[ReportKey, BinaryIO]) -> None:
        missing = [key for key in REPORT_KEYS if key not in sinks]
        if missing:
            raise ValueError(f"no sink for reports: {', '.join(missing)}")
        self._writers = {key: csv.writer(_Utf8(sinks[key])) for key in REPORT_KEYS}
        self._rows: dict[ReportKey, int] = dict.fromkeys(REPORT_KEYS, 0)
        self._summary = ExceptionSummary()
        self._last_seq = 0
        self._run_id: UUID | None = None
        self._finished = False
        for key in _TAPES.values():
            self._writers[key].writerow(LOAN_COLUMNS)
        self._writers["rejection_report"].writerow(REJECTION_COLUMNS)

    def add(self, loan: LoanDispositioned) -> None:
        """Write one loan's rows; loans of one run must come in tape order (rising `seq`)."""
        if self._finished:
            raise ValueError("the reports are finished")
        if self._run_id not in (None, loan.run_id):
            raise ValueError(f"loan of run {loan.run_id} in the reports of run {self._run_id}")
        if loan.loan.seq <= self._last_seq:
            raise ValueError(f"loan seq {loan.loan.seq} after {self._last_seq}: not tape order")
        self._run_id, self._last_seq = loan.run_id, loan.loan.seq
        self._summary.add(loan.exceptions)
        cells = loan_cells(loan)
        if loan.disposition == "rejected":
            for exception in loan.exceptions:
                self._write("rejection_report", [*cells, *_exception_cells(exception)])
        else:
            self._write(_TAPES[loan.disposition], cells)

    def finish(self) -> dict[ReportKey, int]:
        """Write the exception summary; the data rows written to each report."""
        if self._finished:
            raise ValueError("the reports are finished")
        self._finished = True
        self._writers["exception_summary"].writerow(SUMMARY_HEADER)
        for kind, category, severity, count, criteria, message in self._summary.rows():
            row = [guard(kind), guard(category), guard(severity), str(count)]
            self._write("exception_summary", [*row, guard(criteria), guard(message)])
        return dict(self._rows)

    def _write(self, key: ReportKey, cells: list[str]) -> None:
        self._writers[key].writerow(cells)
        self._rows[key] += 1


def write_reports(
    loans: Iterable[LoanDispositioned], sinks: Mapping[ReportKey, BinaryIO]
) -> dict[ReportKey, int]:
    """Write all four reports of loans given in tape order; the data rows of each."""
    writer = ReportWriter(sinks)
    for loan in loans:
        writer.add(loan)
    return writer.finish()


class _Utf8:
    """The text file csv.writer wants, over a binary sink, encoding UTF-8 as it goes."""

    __slots__ = ("_sink",)

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink

    def write(self, text: str) -> int:
        return self._sink.write(text.encode("utf-8"))


def _field_cell(name: str, value: str | None, invalid: tuple[str, ...]) -> str:
    if value is None:
        return ""
    if not value.startswith(FORMULA_PREFIXES):
        return value
    # Parsed numbers are canonical text and never altered, even `-0.5`; only text is guarded.
    if name in NUMERIC_FIELDS and name not in invalid and _is_number(value):
        return value
    return "'" + value


def _exception_cells(exception: LoanException) -> list[str]:
    return [
        guard(exception.exception_type),
        guard(exception.severity),
        guard(exception.message),
        guard(exception.rejection_criteria),
    ]


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False
