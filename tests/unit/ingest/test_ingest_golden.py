"""The golden tapes through the readers and the normaliser: totals and canonical texts."""

import csv
import json
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from msgspec.structs import asdict

from contracts.loans import LOAN_FIELDS, NUMERIC_FIELDS
from contracts.wire import LoanRecord, RowRef
from services.ingest.domain import InMemoryDuplicateIndex, Normaliser
from services.ingest.readers import read_rows
from tests.paths import GOLDEN

RUN_ID = UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
# The four report files' loan rows start with the eleven loan fields (SPEC §3.8).
REPORTS = ("purchase_tape", "projected_tape", "rejection_report")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def ingest(tape: Path) -> tuple[Normaliser, list[LoanRecord]]:
    """Read and normalise one golden tape."""
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())
    with tape.open("rb") as stream:
        return normaliser, list(normaliser.file(tape.name, read_rows(tape.name, stream)))


def as_reported(loan: LoanRecord) -> list[str]:
    """A loan's eleven fields as a report writes them: canonical numbers, escaped other text."""
    cells = []
    for name in LOAN_FIELDS:
        value = getattr(loan.fields, name)
        parsed = name in NUMERIC_FIELDS and name not in loan.invalid
        if value is None:
            cells.append("")
        elif not parsed and value.startswith(FORMULA_STARTS):
            cells.append("'" + value)
        else:
            cells.append(value)
    return cells


def report_rows(folder: Path, report: str) -> Iterator[list[str]]:
    """The loan fields of each row of a report, consecutive repeats (one per exception) merged."""
    with (folder / "expected" / f"{report}.csv").open(encoding="utf-8", newline="") as file:
        previous: list[str] | None = None
        for row in list(csv.reader(file))[1:]:
            fields = row[: len(LOAN_FIELDS)]
            if fields != previous:
                yield fields
            previous = fields


def is_subsequence(items: Sequence[list[str]], of: Sequence[list[str]]) -> bool:
    """Whether `items` appear in `of` in the same order."""
    remaining = iter(of)
    return all(any(item == candidate for candidate in remaining) for item in items)


@pytest.mark.parametrize(("folder", "tape"), [("csv", "tape.csv"), ("xlsx", "tape.xlsx")])
def test_a_golden_tape_ingests_with_the_expected_loan_count_and_balance(
    folder: str, tape: str
) -> None:
    expected = json.loads((GOLDEN / folder / "expected" / "run.json").read_text())

    normaliser, loans = ingest(GOLDEN / folder / tape)

    assert normaliser.total_loans == len(loans) == expected["total_loans"]
    assert str(normaliser.total_balance) == expected["total_balance"]
    assert normaliser.total_balance == Decimal(expected["total_balance"])


@pytest.mark.parametrize(("folder", "tape"), [("csv", "tape.csv"), ("xlsx", "tape.xlsx")])
def test_every_reported_loan_has_the_canonical_texts_ingest_produced_in_tape_order(
    folder: str, tape: str
) -> None:
    _, loans = ingest(GOLDEN / folder / tape)
    produced = [as_reported(loan) for loan in loans]

    for report in REPORTS:
        rows = list(report_rows(GOLDEN / folder, report))
        assert is_subsequence(rows, produced), report


def test_the_golden_csv_duplicates_point_at_their_first_occurrence() -> None:
    normaliser, loans = ingest(GOLDEN / "csv" / "tape.csv")

    expected = json.loads((GOLDEN / "csv" / "expected" / "run.json").read_text())
    summary = (GOLDEN / "csv" / "expected" / "exception_summary.csv").read_text()
    duplicate_count = next(
        int(line.split(",")[3]) for line in summary.splitlines() if line.startswith("duplicate_")
    )
    assert normaliser.duplicates == duplicate_count
    assert expected["total_loans"] == len(loans)
    short_row = next(loan for loan in loans if loan.fields.seller_loan_number == "LN0000400")
    assert short_row.row == 136
    assert short_row.duplicate_of is None
    later = [loan for loan in loans if loan.fields.seller_loan_number == "LN0000400"][1:]
    assert later and all(
        loan.duplicate_of == RowRef(source_file="tape.csv", row=136) for loan in later
    )


def test_the_golden_csv_canonical_texts_match_the_spec_examples() -> None:
    _, loans = ingest(GOLDEN / "csv" / "tape.csv")
    by_number = {loan.fields.seller_loan_number: loan for loan in reversed(loans)}

    assert by_number["LN0000003"].fields.loan_amount == "250000.00"
    assert by_number["LN0000083"].fields.loan_amount == "200000"
    assert by_number["LN0000094"].fields.loan_amount == "1E+5"
    assert by_number["LN0000222"].fields.note_rate == "6.875"
    assert by_number["LN0000344"].fields.loan_amount == "100000"
    assert by_number["LN0000050"].fields.ltv_ratio == "-0"
    assert by_number["LN0000184"].fields.loan_amount == "1_000"
    assert by_number["LN0000184"].invalid == ("loan_amount",)
    assert by_number["LN0000207"].fields.loan_amount == "١٢٣"
    assert by_number["LN0000207"].invalid == ("loan_amount",)


def test_the_golden_csv_row_with_content_only_beyond_the_header_is_a_loan() -> None:
    _, loans = ingest(GOLDEN / "csv" / "tape.csv")

    empty = [loan for loan in loans if set(asdict(loan.fields).values()) == {None}]
    assert [loan.row for loan in empty] == [102]
