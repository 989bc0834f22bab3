"""Tape rows to loan records (SPEC §3.1): headers, values, numbers, duplicates, run totals.

Pure: the standard library, `contracts` and ingest's own error tree. Readers turn files into rows
of cell text; this module decides what those texts mean.
"""

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple, Protocol
from uuid import UUID

from contracts.balance import BalanceNotExact, add_to_balance
from contracts.ids import loan_id
from contracts.loans import LOAN_FIELDS, NUMERIC_FIELDS
from contracts.wire import LoanFields, LoanRecord, RowRef
from services.ingest.edits import RowEdits
from services.ingest.errors import ColumnClash, MissingRows, UnreadableTape

_NOT_NAME = re.compile(r"[^a-z0-9]+")
# ASCII digits only: `\d` would also accept other scripts' digits, which the spec rejects.
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
# A number whose text `str(Decimal(text))` gives back unchanged: no `+`, leading zero, exponent or
# bare point, and no more leading zeros after "0." than Decimal writes without an exponent. Most
# cells are such, and skipping the Decimal round trip for them saves about 3 us a loan.
_CANONICAL_NUMBER = re.compile(
    r"-?(?:[1-9][0-9]*(?:\.[0-9]+)?|0(?:\.(?:0{0,5}[1-9][0-9]*|0{1,6}))?)"
)
_LOAN_FIELDS = frozenset(LOAN_FIELDS)
# How each loan field is read, decided once rather than per cell (this is the hot loop).
_TEXT, _NUMBER_FIELD, _WHOLE, _AMOUNT = "text", "number", "whole", "amount"
_SPECIAL_KINDS = {"loan_amount": _AMOUNT, "credit_score": _WHOLE}
_FIELD_KINDS: tuple[tuple[str, str], ...] = tuple(
    (name, _SPECIAL_KINDS.get(name, _NUMBER_FIELD if name in NUMERIC_FIELDS else _TEXT))
    for name in LOAN_FIELDS
)


def normalise_header_name(text: str) -> str:
    """A column's name: trimmed, lower-cased, runs of non-`a-z0-9` as `_`, no outer `_`."""
    return _NOT_NAME.sub("_", text.strip().lower()).strip("_")


@dataclass(frozen=True, slots=True)
class Header:
    """A file's named columns: each normalised name with its cell position."""

    source_file: str
    columns: tuple[tuple[str, int], ...]

    def values(self, cells: Sequence[str]) -> dict[str, str]:
        """A row's cell text by column name; a short row's missing cells are empty."""
        width = len(cells)
        return {name: cells[index] if index < width else "" for name, index in self.columns}


def normalise_header(cells: Sequence[str], source_file: str) -> Header:
    """The header of a file; raises ColumnClash when two columns normalise to one name."""
    columns: list[tuple[str, int]] = []
    originals: dict[str, list[str]] = {}
    for index, cell in enumerate(cells):
        name = normalise_header_name(cell)
        if not name:
            continue  # a blank-normalising header names no column and never clashes
        originals.setdefault(name, []).append(cell)
        columns.append((name, index))
    clashes = [(name, found) for name, found in originals.items() if len(found) > 1]
    if clashes:
        raise ColumnClash(source_file, clashes)
    return Header(source_file=source_file, columns=tuple(columns))


def parse_number(text: str) -> Decimal | None:
    """The exact number a numeric cell holds, or None when its text is not a number."""
    cleaned = text.strip()
    # Most cells are plain numbers, which the cleaning below would leave as they are.
    if _NUMBER.fullmatch(cleaned) is None:
        if cleaned.startswith("$"):
            cleaned = cleaned[1:]
        cleaned = cleaned.replace(",", "")
        if cleaned.endswith("%"):
            cleaned = cleaned[:-1]
        cleaned = cleaned.strip()
        if _NUMBER.fullmatch(cleaned) is None:
            return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:  # an exponent beyond what any decimal can hold
        return None


def is_whole(number: Decimal) -> bool:
    """Whether a number has no fractional part (`720.0` is whole, `720.5` is not)."""
    return number == number.to_integral_value()


class NormalisedValues(NamedTuple):
    """One row's values after §3.1: loan fields, invalid numerics, other columns, the amount.

    A NamedTuple: built once a loan, and a frozen dataclass's checked `__init__` costs more.
    """

    fields: dict[str, str | None]
    invalid: tuple[str, ...]
    extra: dict[str, str]
    loan_amount: Decimal | None


def normalise_values(values: Mapping[str, str | None]) -> NormalisedValues:
    """Trim every value, read the numeric fields and set the other columns apart."""
    fields: dict[str, str | None] = {}
    invalid: list[str] = []
    loan_amount: Decimal | None = None
    get = values.get
    canonical_number = _CANONICAL_NUMBER.fullmatch
    for name, kind in _FIELD_KINDS:
        raw = get(name)
        text = raw.strip() if raw else ""
        if not text:
            fields[name] = None
        elif kind == _TEXT:
            fields[name] = text
        else:
            canonical = canonical_number(text) is not None
            if canonical and (kind == _NUMBER_FIELD or (kind == _WHOLE and "." not in text)):
                fields[name] = text  # what str(parse_number(text)) is (and whole, without ".")
                continue
            number = Decimal(text) if canonical else parse_number(text)
            if number is None or (kind == _WHOLE and not is_whole(number)):
                invalid.append(name)
                fields[name] = text
            else:
                fields[name] = text if canonical else str(number)
                if kind == _AMOUNT:
                    loan_amount = number
    # Other columns keep only present values: an empty cell is missing, as for loan fields.
    extra = {
        name: text
        for name, raw in values.items()
        if name not in _LOAN_FIELDS and raw and (text := raw.strip())
    }
    return NormalisedValues(fields, tuple(invalid), extra, loan_amount)


class DuplicateIndex(Protocol):
    """Where the first occurrence of each seller loan number of a run is remembered."""

    def first_seen(self, seller_loan_number: str, ref: RowRef) -> RowRef | None:
        """The earlier row with this number, or None after recording `ref` as the first."""
        ...


class InMemoryDuplicateIndex:
    """A duplicate index in a dict: fine for tests and small tapes."""

    def __init__(self) -> None:
        self._seen: dict[str, RowRef] = {}

    def first_seen(self, seller_loan_number: str, ref: RowRef) -> RowRef | None:
        """The earlier row with this number, or None after recording `ref` as the first."""
        earlier = self._seen.get(seller_loan_number)
        if earlier is None:
            self._seen[seller_loan_number] = ref
        return earlier


class TapeColumns:
    """A producer tape's column names as they appear, normalised and checked for clashes."""

    def __init__(self, source_file: str) -> None:
        self._source_file = source_file
        self._names: dict[str, str] = {}
        self._first_original: dict[str, str] = {}

    def name(self, column: str) -> str:
        """The normalised name of a column ("" names none); raises ColumnClash on a clash."""
        name = self._names.get(column)
        if name is None:
            name = normalise_header_name(column)
            first = self._first_original.setdefault(name, column) if name else column
            if first != column:
                raise ColumnClash(self._source_file, [(name, [first, column])])
            self._names[column] = name
        return name


def is_blank_row(cells: Sequence[str]) -> bool:
    """Whether every cell of a row is empty or whitespace.

    One strip of the joined row (strip drops exactly the characters isspace sees) instead of a
    generator over the cells: a third of the CPU on the rows of a tape, which are never blank.
    """
    return not "".join(cells).strip()


def _is_blank(cells: Iterable[str | None]) -> bool:
    """Whether every cell of a row is empty or whitespace."""
    return all(not cell or cell.isspace() for cell in cells)


class Normaliser:
    """Turns a run's tape rows into loan records, in tape order, and keeps the run's totals."""

    def __init__(
        self, run_id: UUID, duplicates: DuplicateIndex, edits: RowEdits | None = None
    ) -> None:
        self._run_id = run_id
        self._duplicates = duplicates
        self._edits = edits
        self._seq = 0
        self._balance = Decimal(0)
        self._duplicate_count = 0

    @property
    def total_loans(self) -> int:
        """Loans yielded so far, invalid and duplicate ones included."""
        return self._seq

    @property
    def total_balance(self) -> Decimal:
        """Exact sum of every parsed loan_amount yielded so far."""
        return self._balance

    @property
    def duplicates(self) -> int:
        """Loans yielded so far that repeat an earlier seller loan number."""
        return self._duplicate_count

    def file(self, source_file: str, rows: Iterable[Sequence[str]]) -> Iterator[LoanRecord]:
        """The loans of one file; `rows` starts with the header, data rows are numbered from 1."""
        iterator = iter(rows)
        header_cells = next(iterator, None)
        if header_cells is None:
            raise UnreadableTape(source_file, "is empty (no header row)")
        header = normalise_header(header_cells, source_file)
        row = 0
        for cells in iterator:
            if is_blank_row(cells):
                continue  # a blank row takes no number
            row += 1
            record = self._record(source_file, row, header.values(cells))
            if record is not None:
                yield record

    def tape(
        self, source_file: str, rows: Iterable[tuple[int, Mapping[str, str | None]]]
    ) -> Iterator[LoanRecord]:
        """The loans of a producer's tape: rows keep the producer's numbers, in row order."""
        columns = TapeColumns(source_file)
        for row, cells in rows:
            if _is_blank(cells.values()):
                continue
            values: dict[str, str | None] = {}
            for column, value in cells.items():
                if value and "\x00" in value:
                    where = f"row {row}, column {column!r}"
                    raise UnreadableTape(source_file, f"{where} holds a NUL character, not text")
                name = columns.name(column)
                if name:
                    values[name] = value
            record = self._record(source_file, row, values)
            if record is not None:
                yield record

    def _record(
        self, source_file: str, row: int, values: Mapping[str, str | None]
    ) -> LoanRecord | None:
        """One loan record, counted into the run's totals and checked for a duplicate; None for
        a row a partial reprocess leaves out (its seller loan number still counts as seen)."""
        edits = self._edits
        if edits is not None:
            values = edits.apply(source_file, row, values)
            if not edits.keeps(source_file, row):
                number = normalise_values(values).fields["seller_loan_number"]
                if number is not None:
                    self._duplicates.first_seen(number, RowRef(source_file=source_file, row=row))
                return None
        normalised = normalise_values(values)
        self._seq += 1
        if normalised.loan_amount is not None:
            try:
                self._balance = add_to_balance(self._balance, normalised.loan_amount)
            except BalanceNotExact as error:
                raise UnreadableTape(source_file, f"row {row}: {error}") from None
        duplicate_of = None
        seller_loan_number = normalised.fields["seller_loan_number"]
        if seller_loan_number is not None:
            here = RowRef(source_file=source_file, row=row)
            duplicate_of = self._duplicates.first_seen(seller_loan_number, here)
            if duplicate_of is not None:
                self._duplicate_count += 1
        return LoanRecord(
            loan_id=loan_id(self._run_id, source_file, row),
            seq=self._seq,
            source_file=source_file,
            row=row,
            fields=LoanFields(**normalised.fields),
            invalid=normalised.invalid,
            extra=normalised.extra,
            duplicate_of=duplicate_of,
        )


def sort_tape_files(names: Iterable[str]) -> list[str]:
    """A run's files in processing order: by Unicode code point (`Z.csv` before `a.csv`)."""
    return sorted(names)


def tape_columns(rows: Iterable[tuple[int, Mapping[str, str | None]]]) -> list[str]:
    """A producer tape's original column names in order of first appearance."""
    seen: dict[str, None] = {}
    for _, cells in rows:
        for column in cells:
            seen.setdefault(column)
    return list(seen)


def check_tape_columns(source_file: str, columns: Iterable[str]) -> None:
    """Raise ColumnClash when two of a producer tape's columns normalise to one name."""
    checked = TapeColumns(source_file)
    for column in columns:
        checked.name(column)


def check_tape_complete(tape_id: str, expected_rows: int, row_numbers: Iterable[int]) -> None:
    """Raise MissingRows unless every row 1..expected_rows arrived (extra numbers are ignored)."""
    arrived = bytearray(expected_rows + 1)  # one byte per row: flat memory for a long tape
    for row in row_numbers:
        if 1 <= row <= expected_rows:
            arrived[row] = 1
    missing = [row for row in range(1, expected_rows + 1) if not arrived[row]]
    if missing:
        raise MissingRows(tape_id, expected_rows, missing)
