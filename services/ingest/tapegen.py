"""Realistic synthetic loan tapes (`loan-engine tape generate`): CSV or XLSX, same seed same tape.

Most rows are clean, eligible-looking loans. A tunable share are bad in the ways real tapes are:
missing and invalid values, `$`/`,`/`%` formats, duplicates, boundary and out-of-range values,
enums in odd case, formula-looking text, short rows, content beyond the header. Blank rows come
on top of the requested loan count, so a tape of N loans always ingests as N loans.
"""

import csv
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

HEADER: tuple[str, ...] = (
    "Seller Loan Number",
    "Loan Amount",
    "Note Rate",
    "LTV Ratio",
    "DTI Ratio",
    "Credit Score",
    "Property Type",
    "Occupancy Status",
    "Loan Purpose",
    "Purchase Price",
    "Appraisal Value",
    "Borrower Name",
    "State",
)
(
    SELLER,
    AMOUNT,
    RATE,
    LTV,
    DTI,
    SCORE,
    PROPERTY,
    OCCUPANCY,
    PURPOSE,
    PRICE,
    APPRAISAL,
    NAME,
    STATE,
) = range(len(HEADER))
REQUIRED = (SELLER, AMOUNT, RATE, LTV, SCORE, PROPERTY)
NUMERIC = (AMOUNT, RATE, LTV, DTI, SCORE, PRICE, APPRAISAL)
PROPERTY_TYPES = ("SFR", "Condo", "Townhouse", "PUD", "2-4 Unit")
OCCUPANCIES = ("Primary", "Second Home", "Investment")
PURPOSES = ("Purchase", "Rate_Term_Refinance", "Cash_Out_Refinance")
STATES = ("CA", "TX", "NY", "FL", "IL", "WA", "GA", "NC", "AZ", "CO")
# How often a blank row is slipped in, per loan row (on top of the bad share).
BLANK_ROW_SHARE = 0.002

Cell = str | int | Decimal | None
Row = list[Cell]


def generate_tape(out: Path, loans: int, seed: int, bad_share: float = 0.05) -> None:
    """Write a synthetic tape of `loans` loans to `out` (.csv or .xlsx), deterministic per seed."""
    if loans < 1:
        raise ValueError("a tape needs at least one loan")
    if not 0 <= bad_share <= 1:
        raise ValueError("bad_share must be between 0 and 1")
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ValueError("the output must be a .csv or .xlsx file")
    rows = _rows(random.Random(seed), loans, bad_share)
    if suffix == ".csv":
        _write_csv(out, rows)
    else:
        _write_xlsx(out, rows)


def _write_csv(out: Path, rows: Iterator[Row]) -> None:
    """Stream rows to a UTF-8 CSV in the csv module's default dialect."""
    with out.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow(["" if cell is None else str(cell) for cell in row])


def _write_xlsx(out: Path, rows: Iterator[Row]) -> None:
    """Stream rows to an XLSX in openpyxl's write-only mode: numbers as numeric cells."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("tape")

    def cell(value: Cell) -> object:
        """A value for a row; text starting with `=` stays text instead of becoming a formula."""
        if isinstance(value, str) and value.startswith("="):
            text = WriteOnlyCell(sheet, value=value)
            text.data_type = "s"
            return text
        return value

    sheet.append(HEADER)
    for row in rows:
        sheet.append([cell(value) for value in row])
    workbook.save(out)


def _rows(rng: random.Random, loans: int, bad_share: float) -> Iterator[Row]:
    """The data rows: `loans` loan rows, a few blank rows among them."""
    sellers: list[str] = []
    for number in range(1, loans + 1):
        if rng.random() < BLANK_ROW_SHARE:
            yield rng.choice([[], ["", " ", "", "\t"], [" "] * len(HEADER)])
        row = _clean_row(rng, number)
        if sellers and rng.random() < bad_share:
            row = rng.choice(DEFECTS)(rng, row, sellers)
        if isinstance(row[SELLER], str) and row[SELLER].startswith("LN") and len(sellers) < 10_000:
            sellers.append(row[SELLER])  # a bounded pool of numbers that later rows may repeat
        yield row


def _clean_row(rng: random.Random, number: int) -> Row:
    """A loan that passes every rule, as a seller's system would export it."""
    ltv = Decimal(rng.randint(4000, 9500)).scaleb(-2)
    # Mostly conforming balances, one in five jumbo; half of them with cents.
    high = 900_000 if rng.random() < 0.8 else 4_000_000
    if rng.random() < 0.5:
        amount: Decimal | int = rng.randint(60_000, high)
    else:
        amount = Decimal(rng.randint(6_000_000, high * 100)).scaleb(-2)
    price = int(Decimal(amount) * 100 / ltv)
    return [
        f"LN{number:07d}",
        amount,
        Decimal(rng.randint(2_500, 11_500)).scaleb(-3),
        ltv,
        Decimal(rng.randint(100, 490)).scaleb(-1),
        rng.randint(620, 820),
        rng.choice(PROPERTY_TYPES),
        rng.choice(OCCUPANCIES),
        rng.choice(PURPOSES),
        price,
        int(price * Decimal(rng.randint(960, 1080)) / 1000),
        f"Borrower {number}",
        rng.choice(STATES),
    ]


def _missing(rng: random.Random, row: Row, _: list[str]) -> Row:
    """A field left empty, or holding only whitespace."""
    row[rng.choice((*REQUIRED, DTI, OCCUPANCY, PURPOSE, PRICE, APPRAISAL))] = rng.choice(
        ["", "   ", None]
    )
    return row


def _invalid(rng: random.Random, row: Row, _: list[str]) -> Row:
    """A numeric field that is not a number."""
    row[rng.choice(NUMERIC)] = rng.choice(
        ["abc", "1_000", "-$5", "١٢٣", "NaN", "Infinity", "12..5", "$", "N/A", "1e", "TBD"]
    )
    return row


def _formatted(rng: random.Random, row: Row, _: list[str]) -> Row:
    """A valid number in a seller's format: currency, grouping, percent, exponent, padding."""
    field, text = rng.choice(
        [
            (AMOUNT, "$250,000.00"),
            (AMOUNT, " $ 200,000 "),
            (AMOUNT, "1e5"),
            (AMOUNT, "1,00,000"),
            (AMOUNT, "$1,234,567.891"),
            (RATE, "6.875%"),
            (RATE, "+5.5"),
            (RATE, "  7.25  "),
            (LTV, "-0"),
            (LTV, "80.00%"),
            (SCORE, "7.2E+2"),
            (SCORE, "720.0"),
            (PRICE, "$300,000"),
            (APPRAISAL, ".5e6"),
        ]
    )
    row[field] = text
    return row


def _fractional_score(rng: random.Random, row: Row, _: list[str]) -> Row:
    """A credit score with a fraction: a number, but invalid as a score."""
    row[SCORE] = rng.choice(["720.5", "700.01", "6.995e2"])
    return row


def _duplicate(rng: random.Random, row: Row, sellers: list[str]) -> Row:
    """An earlier seller loan number: exact, padded (still a duplicate) or re-cased (not one)."""
    earlier = rng.choice(sellers)
    row[SELLER] = rng.choice([earlier, earlier, f" {earlier} ", earlier.lower()])
    return row


def _boundary(rng: random.Random, row: Row, _: list[str]) -> Row:
    """A value exactly on a rule's limit (still passes)."""
    field, value = rng.choice(
        [
            (AMOUNT, 50_000),
            (AMOUNT, 5_000_000),
            (AMOUNT, Decimal("5000000.00")),
            (LTV, Decimal("97.0")),
            (LTV, 97),
            (DTI, Decimal("50.0")),
            (SCORE, 620),
            (RATE, Decimal("1.0")),
            (RATE, Decimal("15.0")),
            (RATE, Decimal("8.05")),
        ]
    )
    row[field] = value
    return row


def _out_of_range(rng: random.Random, row: Row, _: list[str]) -> Row:
    """A value just or far outside a rule's limit."""
    field, value = rng.choice(
        [
            (AMOUNT, Decimal("49999.99")),
            (AMOUNT, Decimal("5000000.01")),
            (AMOUNT, 0),
            (AMOUNT, -5000),
            (LTV, Decimal("97.01")),
            (LTV, 125),
            (DTI, Decimal("50.1")),
            (DTI, 65),
            (SCORE, 619),
            (SCORE, 300),
            (RATE, Decimal("0.99")),
            (RATE, Decimal("15.01")),
            (PRICE, 0),
            (APPRAISAL, 0),
        ]
    )
    row[field] = value
    return row


def _odd_enum(rng: random.Random, row: Row, _: list[str]) -> Row:
    """An enum in odd case or padding (eligible), or one outside the list (ineligible)."""
    field, text = rng.choice(
        [
            (PROPERTY, " condo "),
            (PROPERTY, "SFR "),
            (PROPERTY, "pud"),
            (PROPERTY, "Manufactured"),
            (PROPERTY, "Co-op"),
            (OCCUPANCY, "SECOND HOME"),
            (OCCUPANCY, " primary"),
            (OCCUPANCY, "vacation"),
            (PURPOSE, "cash_out_refinance"),
            (PURPOSE, "Construction"),
        ]
    )
    row[field] = text
    return row


def _formula_text(rng: random.Random, row: Row, _: list[str]) -> Row:
    """Text that a spreadsheet would run as a formula, or that holds commas, quotes, newlines."""
    field, text = rng.choice(
        [
            (SELLER, '=HYPERLINK("http://x")'),
            (SELLER, "@SUM(A1)"),
            (SELLER, "+1"),
            (SELLER, "-2"),
            (NAME, "=cmd|' /C calc'!A0"),
            (NAME, "\tTabbed"),
            (NAME, 'Smith, "Jr"'),
            (NAME, "line\nbreak"),
            (PROPERTY, "=SFR"),
        ]
    )
    row[field] = text
    return row


def _short(rng: random.Random, row: Row, _: list[str]) -> Row:
    """A row that stops early: its missing cells are empty."""
    return row[: rng.randint(SCORE + 1, len(HEADER) - 1)]


def _beyond_header(rng: random.Random, row: Row, _: list[str]) -> Row:
    """A row with content beyond the header: a loan whose fields may all be missing."""
    if rng.random() < 0.5:
        return [*row, "beyond"]
    return [*([""] * len(HEADER)), "beyond"]


DEFECTS: tuple[Callable[[random.Random, Row, list[str]], Row], ...] = (
    _missing,
    _missing,
    _invalid,
    _formatted,
    _formatted,
    _fractional_score,
    _duplicate,
    _duplicate,
    _boundary,
    _out_of_range,
    _out_of_range,
    _odd_enum,
    _formula_text,
    _short,
    _beyond_header,
)
