"""A reprocess's edits at ingest (SPEC §7): corrected cells in place of the tape's text, and a
partial run that keeps only some rows but finds duplicates against the whole tape."""

from uuid import UUID

from contracts import wire
from contracts.loans import RowRef
from contracts.runs import CellCorrection, ReprocessEdits
from services.ingest.domain import InMemoryDuplicateIndex, Normaliser
from services.ingest.edits import RowEdits

CHILD = UUID("5f0c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
CORRECTION = UUID("00000000-0000-4000-8000-000000000001")
ROWS = [
    ["Seller Loan Number", "Loan Amount", "LTV Ratio", "Branch"],
    ["L-1", "100000", "58", "north"],
    ["L-2", "$200,000", "80", "south"],
    ["L-1", "300000", "70", "east"],
]


def normalised(edits: ReprocessEdits | None) -> tuple[Normaliser, list]:
    normaliser = Normaliser(CHILD, InMemoryDuplicateIndex(), RowEdits.of(edits))
    return normaliser, list(normaliser.file("tape.csv", ROWS))


def cell(row: int, field: str, value: str) -> CellCorrection:
    return CellCorrection(
        source_file="tape.csv", row=row, field=field, value=value, correction_id=CORRECTION
    )


def test_without_edits_every_row_is_a_loan_as_before() -> None:
    _, loans = normalised(None)
    assert [loan.row for loan in loans] == [1, 2, 3]


def test_a_correction_replaces_the_cell_text_before_normalisation() -> None:
    _, loans = normalised(ReprocessEdits(corrections=(cell(2, "loan_amount", " $250,000 "),)))
    assert loans[1].fields.loan_amount == "250000"
    assert loans[0].fields.loan_amount == "100000"


def test_a_correction_of_a_kept_column_or_an_absent_field_is_applied_too() -> None:
    corrections = (cell(1, "branch", "west"), cell(1, "dti_ratio", "35"))
    _, loans = normalised(ReprocessEdits(corrections=corrections))
    assert loans[0].extra == {"branch": "west"}
    assert loans[0].fields.dti_ratio == "35"


def test_the_later_of_two_corrections_of_one_cell_wins() -> None:
    corrections = (cell(1, "ltv_ratio", "85"), cell(1, "ltv_ratio", "91"))
    _, loans = normalised(ReprocessEdits(corrections=corrections))
    assert loans[0].fields.ltv_ratio == "91"


def test_a_corrected_seller_loan_number_is_no_longer_a_duplicate() -> None:
    _, loans = normalised(ReprocessEdits(corrections=(cell(3, "seller_loan_number", "L-3"),)))
    assert loans[2].duplicate_of is None


def test_a_partial_run_keeps_only_its_rows_numbered_from_one_with_their_own_totals() -> None:
    keep = (RowRef(source_file="tape.csv", row=2),)
    normaliser, loans = normalised(ReprocessEdits(rows=keep))
    assert [(loan.row, loan.seq) for loan in loans] == [(2, 1)]
    assert normaliser.total_loans == 1
    assert str(normaliser.total_balance) == "200000"


def test_a_partial_run_finds_a_duplicate_of_a_row_it_leaves_out() -> None:
    keep = (RowRef(source_file="tape.csv", row=3),)
    normaliser, loans = normalised(ReprocessEdits(rows=keep))
    assert loans[0].duplicate_of == wire.RowRef(source_file="tape.csv", row=1)
    assert normaliser.duplicates == 1
