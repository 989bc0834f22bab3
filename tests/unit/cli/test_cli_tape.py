"""A tape file as a producer pushes it (SPEC §2): original header names, file row numbers."""

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.tape import UnpushableTape, count_rows, named_columns, tape_rows


def test_rows_keep_the_original_header_names_and_are_numbered_without_blank_rows() -> None:
    rows = [
        ["Seller Loan Number", "Loan Amount"],
        ["L-1", "$100,000"],
        ["", "  "],
        ["L-2", "200000"],
    ]

    assert list(tape_rows(rows)) == [
        (1, {"Seller Loan Number": "L-1", "Loan Amount": "$100,000"}),
        (2, {"Seller Loan Number": "L-2", "Loan Amount": "200000"}),
    ]


def test_a_short_row_has_its_missing_cells_empty() -> None:
    rows = [["A", "B", "C"], ["1"]]

    assert list(tape_rows(rows)) == [(1, {"A": "1", "B": "", "C": ""})]


def test_content_beyond_the_header_keeps_its_row_under_names_that_name_no_column() -> None:
    rows = [["A", "", "#"], ["", "x", "y", "z"], ["1", "", "", ""]]

    assert list(tape_rows(rows)) == [
        (1, {"A": "", "_": "x", "__": "y", "___": "z"}),
        (2, {"A": "1"}),
    ]


def test_headers_spelled_identically_cannot_be_pushed() -> None:
    with pytest.raises(UnpushableTape, match="two columns named 'Notes'"):
        named_columns(["Notes", "Loan Amount", "Notes"])


def test_headers_that_only_normalise_alike_are_pushed_for_ingest_to_reject() -> None:
    assert named_columns(["Loan Amount", "loan_amount", " "]) == [
        (0, "Loan Amount"),
        (1, "loan_amount"),
    ]


def test_the_whole_file_is_read_before_a_push(tmp_path: Path) -> None:
    tape = tmp_path / "tape.csv"
    tape.write_bytes(b"A,B\n1,2\n\n3,4\n" + "5,caf\u00e9\n".encode("latin-1"))

    with pytest.raises(Exception, match="not UTF-8"):
        count_rows(tape)


def test_counting_rows_skips_blank_ones(tmp_path: Path) -> None:
    tape = tmp_path / "tape.csv"
    with tape.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["A", "B"], ["1", "2"], ["", ""], ["3", "4"]])

    assert count_rows(tape) == 2


def test_a_file_that_is_not_a_tape_is_bad_usage(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")

    result = CliRunner().invoke(app, ["tape", "push", str(notes)])

    assert result.exit_code == 2
    assert "not a .csv or .xlsx" in result.output


def test_a_tape_id_that_cannot_name_a_file_is_bad_usage(tmp_path: Path) -> None:
    tape = tmp_path / "tape.csv"
    tape.write_text("A\n1\n")

    result = CliRunner().invoke(app, ["tape", "push", str(tape), "--tape-id", "../escape"])

    assert result.exit_code == 2
    assert "cannot name a file" in result.output


def test_generate_writes_a_tape_of_the_asked_size(tmp_path: Path) -> None:
    out = tmp_path / "gen" / "tape.csv"

    result = CliRunner().invoke(
        app, ["tape", "generate", "--loans", "25", "--seed", "7", "--out", str(out), "--json"]
    )

    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == f'{{"path": "{out.resolve()}", "loans": 25}}'
    assert count_rows(out) == 25
