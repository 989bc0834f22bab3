"""Synthetic tapes: deterministic per seed, N loans in, N loans out, bad in realistic ways."""

from collections import Counter
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from msgspec.structs import asdict

from contracts.wire import LoanRecord
from services.ingest.domain import InMemoryDuplicateIndex, Normaliser
from services.ingest.readers import read_rows
from services.ingest.tapegen import HEADER, generate_tape
from tests.paths import GOLDEN

RUN_ID = UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
GOLDEN_HEADER = GOLDEN / "csv" / "tape.csv"


def rows(path: Path) -> list[list[str]]:
    """Every row of a tape file as the readers see it."""
    with path.open("rb") as stream:
        return list(read_rows(path.name, stream))


def loans(path: Path) -> tuple[Normaliser, list[LoanRecord]]:
    """The normaliser and loans of one tape file."""
    normaliser = Normaliser(RUN_ID, InMemoryDuplicateIndex())
    with path.open("rb") as stream:
        return normaliser, list(normaliser.file(path.name, read_rows(path.name, stream)))


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_tape_of_n_loans_ingests_as_exactly_n_loans(tmp_path: Path, suffix: str) -> None:
    tape = tmp_path / f"tape{suffix}"

    generate_tape(tape, loans=600, seed=3, bad_share=0.3)

    normaliser, records = loans(tape)
    assert normaliser.total_loans == len(records) == 600


def test_the_same_seed_writes_the_same_csv_byte_for_byte(tmp_path: Path) -> None:
    generate_tape(tmp_path / "a.csv", loans=300, seed=11)
    generate_tape(tmp_path / "b.csv", loans=300, seed=11)
    generate_tape(tmp_path / "c.csv", loans=300, seed=12)

    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()


def test_the_same_seed_writes_the_same_xlsx_content(tmp_path: Path) -> None:
    generate_tape(tmp_path / "a.xlsx", loans=200, seed=11)
    generate_tape(tmp_path / "b.xlsx", loans=200, seed=11)

    assert rows(tmp_path / "a.xlsx") == rows(tmp_path / "b.xlsx")


def test_the_header_is_the_golden_tapes_header(tmp_path: Path) -> None:
    generate_tape(tmp_path / "tape.csv", loans=5, seed=1)

    golden_header = GOLDEN_HEADER.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert list(HEADER) == golden_header
    assert rows(tmp_path / "tape.csv")[0] == golden_header


def test_a_clean_tape_has_no_missing_invalid_or_duplicate_loan(tmp_path: Path) -> None:
    generate_tape(tmp_path / "tape.csv", loans=1_000, seed=5, bad_share=0)

    normaliser, records = loans(tmp_path / "tape.csv")
    assert normaliser.duplicates == 0
    assert all(record.invalid == () for record in records)
    assert all(None not in asdict(record.fields).values() for record in records)
    assert all(set(record.extra) == {"borrower_name", "state"} for record in records)


def test_xlsx_numbers_are_numeric_cells_and_read_like_their_csv_text(tmp_path: Path) -> None:
    generate_tape(tmp_path / "tape.csv", loans=300, seed=9, bad_share=0)
    generate_tape(tmp_path / "tape.xlsx", loans=300, seed=9, bad_share=0)

    _, from_csv = loans(tmp_path / "tape.csv")
    _, from_xlsx = loans(tmp_path / "tape.xlsx")
    # A spreadsheet drops trailing zeros (80.50 is the number 80.5), so compare numbers.
    for csv_loan, xlsx_loan in zip(from_csv, from_xlsx, strict=True):
        csv_fields, xlsx_fields = asdict(csv_loan.fields), asdict(xlsx_loan.fields)
        assert csv_fields.keys() == xlsx_fields.keys()
        for name, text in csv_fields.items():
            if name in ("seller_loan_number", "property_type", "occupancy_status", "loan_purpose"):
                assert xlsx_fields[name] == text
            else:
                assert Decimal(xlsx_fields[name]) == Decimal(text)


def test_a_bad_tape_holds_every_kind_of_defect_a_real_tape_has(tmp_path: Path) -> None:
    tape = tmp_path / "tape.csv"
    generate_tape(tape, loans=3_000, seed=21, bad_share=0.5)

    raw = rows(tape)
    normaliser, records = loans(tape)
    invalid = Counter(name for record in records for name in record.invalid)
    texts = {text for row in raw for text in row}
    assert normaliser.duplicates > 0
    assert {"loan_amount", "credit_score"} <= set(invalid)
    assert any(record.fields.property_type is None for record in records)
    assert {"$250,000.00", "1e5", "6.875%", "7.2E+2", "720.5", "1_000"} & texts
    assert any(text.startswith(("=", "@", "+", "-")) for text in texts)
    assert any(text != text.strip() for text in texts)
    assert any(len(row) < len(HEADER) for row in raw[1:])
    assert any(len(row) > len(HEADER) for row in raw[1:])
    assert any(all(not cell.strip() for cell in row) for row in raw[1:])
    assert any(record.fields.seller_loan_number is None for record in records)
    blank_rows = len(raw) - 1 - len(records)
    assert blank_rows > 0


def test_xlsx_text_that_looks_like_a_formula_is_written_as_text(tmp_path: Path) -> None:
    generate_tape(tmp_path / "tape.xlsx", loans=400, seed=21, bad_share=0.5)

    texts = {text for row in rows(tmp_path / "tape.xlsx") for text in row}
    assert any(text.startswith("=") for text in texts)


def test_the_share_of_bad_rows_is_tunable(tmp_path: Path) -> None:
    def defects(bad_share: float) -> int:
        tape = tmp_path / f"tape-{bad_share}.csv"
        generate_tape(tape, loans=2_000, seed=8, bad_share=bad_share)
        _, records = loans(tape)
        return sum(1 for record in records if record.invalid or record.duplicate_of)

    assert defects(0) == 0
    assert 0 < defects(0.05) < defects(0.5)


@pytest.mark.parametrize(
    ("name", "count", "bad_share", "message"),
    [
        ("tape.txt", 10, 0.05, ".csv or .xlsx"),
        ("tape.csv", 0, 0.05, "at least one loan"),
        ("tape.csv", 10, 1.5, "between 0 and 1"),
        ("tape.csv", 10, -0.1, "between 0 and 1"),
    ],
)
def test_generate_refuses_impossible_requests(
    tmp_path: Path, name: str, count: int, bad_share: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        generate_tape(tmp_path / name, loans=count, seed=1, bad_share=bad_share)

    assert not (tmp_path / name).exists()
