"""Tape files to rows (SPEC §3.1): CSV encoding and shape, XLSX cell kinds, hostile files."""

import csv
import io
import os
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from defusedxml.common import EntitiesForbidden
from openpyxl import Workbook
from openpyxl.utils.datetime import to_excel

from services.ingest.errors import TapeError, UnreadableTape
from services.ingest.readers import (
    ReadLimits,
    cell_text,
    is_tape_file,
    number_text,
    read_rows,
    rebuild_tape_csv,
)
from tests.unit.ingest.xlsx_parts import sheet_xml, workbook_bytes


def rows_of(name: str, data: bytes, limits: ReadLimits = ReadLimits()) -> list[list[str]]:
    """Every row `read_rows` yields for a file of that name and content."""
    return list(read_rows(name, io.BytesIO(data), limits))


def causes(error: BaseException) -> Iterator[BaseException]:
    """An error and every error it was raised from or while handling."""
    current: BaseException | None = error
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__


def inline(reference: str, text: str) -> str:
    """An inline-string cell."""
    return f'<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>'


def number(reference: str, value: str, style: int = 0) -> str:
    """A numeric cell, optionally styled (1: date, 2: date and time)."""
    style_attribute = f' s="{style}"' if style else ""
    return f'<c r="{reference}"{style_attribute}><v>{value}</v></c>'


def one_column_sheet(*cells: str) -> str:
    """A sheet with header `Value` in A1 and one cell per row below it."""
    rows = "".join(
        f'<row r="{index}">{cell.replace("REF", f"A{index}")}</row>'
        for index, cell in enumerate([inline("REF", "Value"), *cells], start=1)
    )
    return sheet_xml(rows)


def xlsx_values(*cells: str) -> list[str]:
    """The texts read from a one-column XLSX holding `cells` (with `REF` as their reference)."""
    rows = rows_of("tape.xlsx", workbook_bytes([("tape", one_column_sheet(*cells))]))
    return [row[0] if row else "" for row in rows[1:]]


# File names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "is_tape"),
    [
        ("tape.csv", True),
        ("TAPE.CSV", True),
        ("tape.Xlsx", True),
        ("folder/tape.xlsx", True),
        ("tape.xls", False),
        ("tape.xlsm", False),
        ("tape.csv.bak", False),
        ("tape", False),
        ("~$tape.xlsx", False),
        ("._tape.csv", False),
        ("folder/.hidden.csv", False),
    ],
)
def test_a_tape_file_is_a_csv_or_xlsx_that_is_not_a_lock_or_hidden_file(
    name: str, is_tape: bool
) -> None:
    assert is_tape_file(name) is is_tape


def test_any_other_file_is_refused_before_it_is_read() -> None:
    with pytest.raises(UnreadableTape, match="only .csv and .xlsx") as raised:
        read_rows("tape.xls", io.BytesIO(b"whatever"))

    assert isinstance(raised.value, TapeError)


# CSV --------------------------------------------------------------------------------------------


def test_a_csv_yields_its_header_then_its_rows_as_cell_texts() -> None:
    data = 'Seller Loan Number,Loan Amount\r\nLN1,"$250,000"\r\nLN2,\r\n"a ""quoted""\nvalue",x\r\n'

    assert rows_of("tape.csv", data.encode()) == [
        ["Seller Loan Number", "Loan Amount"],
        ["LN1", "$250,000"],
        ["LN2"],
        ['a "quoted"\nvalue', "x"],
    ]


def test_a_csv_is_read_as_utf8_with_or_without_a_bom() -> None:
    text = "Name,City\nAnn,Zürich\n"

    with_bom = rows_of("tape.csv", "\ufeff".encode() + text.encode())
    without_bom = rows_of("tape.csv", text.encode())

    assert with_bom == without_bom == [["Name", "City"], ["Ann", "Zürich"]]


def test_a_csv_that_is_not_utf8_fails_clearly_instead_of_garbling() -> None:
    data = "Name,City\nAnn,Zürich\n".encode("latin-1")

    with pytest.raises(
        UnreadableTape, match=r"tape.csv: is not UTF-8 text \(invalid bytes on line 2\)"
    ):
        rows_of("tape.csv", data)


def test_the_line_of_a_bad_byte_is_named_however_deep_in_the_file() -> None:
    data = b"Name,City\r\n" + b"Ann,Paris\r\n" * 5_000 + "Bob,Zürich\r\n".encode("cp1252")

    with pytest.raises(UnreadableTape, match=r"invalid bytes on line 5002\)"):
        rows_of("tape.csv", data)


def test_a_utf16_csv_without_a_bom_fails_clearly_on_its_nul_bytes() -> None:
    # UTF-16 without a BOM is valid UTF-8 full of NUL bytes: read as text, it would reach reports
    # and the database, which cannot hold NUL.
    data = "Name,City\r\nAnn,Paris\r\n".encode("utf-16-le")

    with pytest.raises(
        UnreadableTape, match=r"tape.csv: is not UTF-8 text \(a NUL byte on line 1\)"
    ):
        rows_of("tape.csv", data)


def test_the_line_of_a_nul_byte_is_named_however_deep_in_the_file() -> None:
    data = b"Name,City\r\n" + b"Ann,Paris\r\n" * 5_000 + b"Bob,Pa\x00ris\r\n"

    with pytest.raises(UnreadableTape, match=r"a NUL byte on line 5002\)"):
        rows_of("tape.csv", data)


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_a_csv_with_any_line_ending_is_read(newline: str) -> None:
    data = newline.join(["Name,City", "Ann,Paris", '"multi', 'line",x', ""]).encode()

    assert rows_of("tape.csv", data) == [
        ["Name", "City"],
        ["Ann", "Paris"],
        [f"multi{newline}line", "x"],
    ]


def test_a_utf16_csv_fails_clearly() -> None:
    with pytest.raises(UnreadableTape, match="not UTF-8"):
        rows_of("tape.csv", "Name,City\nAnn,Paris\n".encode("utf-16"))


def test_an_empty_file_fails_clearly() -> None:
    with pytest.raises(UnreadableTape, match="tape.csv: is empty"):
        rows_of("tape.csv", b"")


def test_a_header_only_file_fails_clearly() -> None:
    with pytest.raises(UnreadableTape, match="has a header but no data rows"):
        rows_of("tape.csv", b"Seller Loan Number,Loan Amount\r\n")


def test_a_file_whose_data_rows_are_all_blank_fails_like_a_header_only_file() -> None:
    with pytest.raises(UnreadableTape, match="no data rows"):
        rows_of("tape.csv", b"Seller Loan Number,Loan Amount\r\n , \r\n\r\n")


def test_a_file_whose_first_row_is_blank_has_no_header_and_fails_clearly() -> None:
    with pytest.raises(UnreadableTape, match="empty first row"):
        rows_of("tape.csv", b" , \r\nSeller Loan Number\r\nLN1\r\n")


def test_a_csv_field_beyond_the_csv_module_limit_fails_clearly() -> None:
    data = b"Name\r\n" + b"x" * 200_000 + b"\r\n"

    with pytest.raises(UnreadableTape, match="is not a readable CSV"):
        rows_of("tape.csv", data)


def test_reading_does_not_close_the_callers_stream() -> None:
    stream = io.BytesIO(b"Name\r\nAnn\r\n")

    list(read_rows("tape.csv", stream))

    assert not stream.closed


def test_trailing_empty_cells_are_dropped_from_every_row() -> None:
    assert rows_of("tape.csv", b"A,B,,\r\n1,,,\r\n,2,\r\n") == [["A", "B"], ["1"], ["", "2"]]


def test_a_file_with_more_rows_than_the_limit_fails() -> None:
    data = b"Name\r\n" + b"x\r\n" * 11

    assert len(rows_of("tape.csv", data, ReadLimits(max_rows=11))) == 12
    with pytest.raises(UnreadableTape, match="more than 10 data rows"):
        rows_of("tape.csv", data, ReadLimits(max_rows=10))


def test_a_file_with_more_columns_than_the_limit_fails() -> None:
    data = b"A,B,C\r\n1,2,3,4\r\n"

    with pytest.raises(UnreadableTape, match="more than 3 columns"):
        rows_of("tape.csv", data, ReadLimits(max_columns=3))


# XLSX: cell kinds -------------------------------------------------------------------------------


def test_xlsx_numeric_cells_read_as_shortest_decimal_text_without_fraction_when_whole() -> None:
    assert xlsx_values(
        number("REF", "720.0"),
        number("REF", "720"),
        number("REF", "6.875"),
        number("REF", "3736580"),
        number("REF", "455438.06"),
        number("REF", "0.30000000000000004"),
        number("REF", "1E-5"),
        number("REF", "1.5E+16"),
        number("REF", "-0"),
        number("REF", "-5000"),
        number("REF", "12345678901234567890"),
        number("REF", "1.23456789012345E+19"),
        number("REF", "1.23456789012345E+17"),
        number("REF", "1E+23"),
        number("REF", "-0.0"),
    ) == [
        "720",
        "720",
        "6.875",
        "3736580",
        "455438.06",
        "0.30000000000000004",
        "0.00001",
        "15000000000000000",
        "0",
        "-5000",
        "12345678901234567890",
        "12345678901234500000",
        "123456789012345000",
        "100000000000000000000000",
        "0",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.23456789012345e19, "12345678901234500000"),
        (2.0**53, "9007199254740992"),
        (1e23, "100000000000000000000000"),
        (-0.0, "0"),
        (720.0, "720"),
        (-6.875, "-6.875"),
    ],
)
def test_a_whole_float_is_its_shortest_round_trip_text_not_its_binary_value(
    value: float, text: str
) -> None:
    # SPEC 3.1: "written as its shortest round-trip decimal text, without a fractional part when
    # the number is whole". An 18-digit loan number saved by Excel must read as Excel shows it.
    assert number_text(value) == text


def test_xlsx_numbers_written_by_a_spreadsheet_library_read_as_the_number_they_hold(
    tmp_path: Path,
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Credit Score", "Note Rate", "Loan Amount"])
    sheet.append([720.0, 6.875, 250000])
    workbook.save(tmp_path / "tape.xlsx")

    rows = rows_of("tape.xlsx", (tmp_path / "tape.xlsx").read_bytes())

    assert rows[1] == ["720", "6.875", "250000"]


def test_xlsx_text_cells_are_taken_as_text_even_when_they_look_like_numbers_or_formulas() -> None:
    assert xlsx_values(
        inline("REF", "=SUM(A1)"),
        inline("REF", "0720"),
        inline("REF", "$250,000.00"),
        inline("REF", " condo "),
    ) == ["=SUM(A1)", "0720", "$250,000.00", " condo "]


def test_xlsx_shared_string_cells_are_taken_as_text() -> None:
    sheet = sheet_xml(
        '<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row>'
    )

    rows = rows_of(
        "tape.xlsx", workbook_bytes([("tape", sheet)], shared_strings=["Name", "@SUM(A1)"])
    )

    assert rows == [["Name"], ["@SUM(A1)"]]


def test_an_xlsx_formula_cell_reads_as_its_cached_value() -> None:
    assert xlsx_values(
        '<c r="REF"><f>B2*2</f><v>12.5</v></c>',
        '<c r="REF" t="str"><f>CONCAT("L","N")</f><v>LN</v></c>',
        '<c r="REF" t="b"><f>TRUE()</f><v>1</v></c>',
    ) == ["12.5", "LN", "TRUE"]


def test_an_xlsx_formula_cell_without_a_cached_value_is_missing() -> None:
    assert xlsx_values('<c r="REF"><f>B2*2</f></c>', number("REF", "1")) == ["", "1"]


def test_xlsx_boolean_cells_read_true_or_false() -> None:
    assert xlsx_values('<c r="REF" t="b"><v>1</v></c>', '<c r="REF" t="b"><v>0</v></c>') == [
        "TRUE",
        "FALSE",
    ]


def test_xlsx_date_cells_read_iso_8601_with_the_time_only_when_not_midnight() -> None:
    midnight = to_excel(datetime(2026, 11, 23))
    morning = to_excel(datetime(2026, 11, 23, 9, 30))

    assert xlsx_values(
        number("REF", str(midnight), style=1),
        number("REF", str(morning), style=2),
        number("REF", str(midnight), style=2),
        '<c r="REF" t="d"><v>2026-11-23T09:30:00</v></c>',
    ) == ["2026-11-23", "2026-11-23T09:30:00", "2026-11-23", "2026-11-23T09:30:00"]


def test_xlsx_error_cells_read_their_error_text() -> None:
    assert xlsx_values(
        '<c r="REF" t="e"><v>#N/A</v></c>', '<c r="REF" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
    ) == ["#N/A", "#DIV/0!"]


def test_cell_texts_of_python_values_follow_the_spec() -> None:
    assert cell_text(None) == ""
    assert cell_text(True) == "TRUE"
    assert cell_text(date(2026, 11, 23)) == "2026-11-23"
    assert cell_text(datetime(2026, 11, 23, 9, 30, 0, 500_000)) == "2026-11-23T09:30:00.500000"
    assert number_text(float("inf")) == "inf"
    assert number_text(float("nan")) == "nan"


def test_the_first_worksheet_in_workbook_order_is_the_tape() -> None:
    first = sheet_xml(
        f'<row r="1">{inline("A1", "Tape")}</row><row r="2">{number("A2", "1")}</row>'
    )
    second = sheet_xml(
        f'<row r="1">{inline("A1", "Notes")}</row><row r="2">{number("A2", "2")}</row>'
    )

    rows = rows_of("tape.xlsx", workbook_bytes([("tape", first), ("notes", second)]))

    assert rows == [["Tape"], ["1"]]


def test_xlsx_gaps_between_cells_and_rows_read_as_empty() -> None:
    sheet = sheet_xml(
        f'<row r="1">{inline("A1", "A")}{inline("C1", "C")}</row>'
        f'<row r="3">{number("B3", "2")}</row>'
    )

    assert rows_of("tape.xlsx", workbook_bytes([("tape", sheet)])) == [
        ["A", "", "C"],
        [],
        ["", "2"],
    ]


def test_a_header_only_xlsx_fails_clearly() -> None:
    with pytest.raises(UnreadableTape, match="tape.xlsx: has a header but no data rows"):
        rows_of("tape.xlsx", workbook_bytes([("tape", one_column_sheet())]))


def test_an_xlsx_with_an_empty_sheet_fails_clearly() -> None:
    with pytest.raises(UnreadableTape, match="tape.xlsx: is empty"):
        rows_of("tape.xlsx", workbook_bytes([("tape", sheet_xml(""))]))


def test_an_xlsx_read_from_a_stream_that_cannot_seek_is_spooled_first() -> None:
    data = workbook_bytes([("tape", one_column_sheet(number("REF", "7")))])
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as writer:
        writer.write(data)  # a small workbook fits in the pipe's buffer
    with os.fdopen(read_end, "rb") as stream:
        assert not stream.seekable()

        assert list(read_rows("tape.xlsx", stream)) == [["Value"], ["7"]]


# XLSX: broken and hostile files -----------------------------------------------------------------


def test_a_file_named_xlsx_that_is_not_a_zip_fails_clearly() -> None:
    with pytest.raises(UnreadableTape, match="tape.xlsx: is not a readable XLSX workbook"):
        rows_of("tape.xlsx", b"Seller Loan Number,Loan Amount\r\nLN1,1\r\n")


def test_a_zip_that_is_not_a_workbook_fails_clearly() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")

    with pytest.raises(UnreadableTape, match="is not a readable XLSX workbook"):
        rows_of("tape.xlsx", buffer.getvalue())


def test_an_xml_bomb_is_refused_without_expanding_it() -> None:
    bomb = (
        '<!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    )
    sheet = sheet_xml(f'<row r="1">{inline("A1", "&lol3;")}</row>', prologue=bomb)

    with pytest.raises(UnreadableTape, match="is not a readable XLSX workbook") as raised:
        rows_of("tape.xlsx", workbook_bytes([("tape", sheet)]))

    assert any(isinstance(error, EntitiesForbidden) for error in causes(raised.value))


def test_an_xlsx_that_would_unpack_beyond_the_limit_is_refused_before_parsing() -> None:
    data = workbook_bytes([("tape", one_column_sheet(inline("REF", "x" * 10_000)))])

    with pytest.raises(UnreadableTape, match="unpacks to .* bytes, more than the limit of 5000"):
        rows_of("tape.xlsx", data, ReadLimits(max_unpacked_bytes=5_000))


def test_a_lying_dimension_is_ignored() -> None:
    sheet = sheet_xml(
        f'<row r="1">{inline("A1", "A")}</row><row r="2">{number("A2", "1")}</row>',
        dimension="A1:XFD1048576",
    )

    assert rows_of("tape.xlsx", workbook_bytes([("tape", sheet)])) == [["A"], ["1"]]


def test_a_row_far_below_the_data_is_stopped_at_the_row_limit() -> None:
    sheet = sheet_xml(
        f'<row r="1">{inline("A1", "A")}</row><row r="1048576">{number("A1048576", "1")}</row>'
    )

    with pytest.raises(UnreadableTape, match="more than 1000 data rows"):
        rows_of("tape.xlsx", workbook_bytes([("tape", sheet)]), ReadLimits(max_rows=1_000))


def test_a_cell_far_to_the_right_is_stopped_at_the_column_limit() -> None:
    sheet = sheet_xml(f'<row r="1">{inline("A1", "A")}</row><row r="2">{number("XFD2", "1")}</row>')

    with pytest.raises(UnreadableTape, match="more than 1000 columns"):
        rows_of("tape.xlsx", workbook_bytes([("tape", sheet)]))


def test_empty_formatted_cells_far_to_the_right_do_not_count_as_columns() -> None:
    sheet = sheet_xml(
        f'<row r="1">{inline("A1", "A")}<c r="XFD1" s="1"/></row>'
        f'<row r="2">{number("A2", "1")}<c r="XFD2" s="1"/></row>'
    )

    assert rows_of("tape.xlsx", workbook_bytes([("tape", sheet)])) == [["A"], ["1"]]


# The archive copy of a producer's tape ----------------------------------------------------------


def test_a_producer_tape_is_rebuilt_as_csv_with_its_original_column_names() -> None:
    columns = ["Seller Loan Number", "loan_amount", "Borrower Name"]
    rows = [
        (1, {"Seller Loan Number": "L-1", "loan_amount": "250000", "Borrower Name": 'Smith, "Jr"'}),
        (2, {"loan_amount": "$1,000", "Borrower Name": None}),
        (3, {"Seller Loan Number": "L-3", "Borrower Name": "line\nbreak"}),
    ]

    text = "".join(rebuild_tape_csv(columns, rows))

    assert text == (
        "Seller Loan Number,loan_amount,Borrower Name\r\n"
        'L-1,250000,"Smith, ""Jr"""\r\n'
        ',"$1,000",\r\n'
        'L-3,,"line\nbreak"\r\n'
    )
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        columns,
        ["L-1", "250000", 'Smith, "Jr"'],
        ["", "$1,000", ""],
        ["L-3", "", "line\nbreak"],
    ]


def test_a_long_rebuilt_tape_comes_in_chunks_that_join_to_the_whole() -> None:
    rows = [(number, {"n": str(number) * 50}) for number in range(1, 5_001)]

    chunks = list(rebuild_tape_csv(["n"], rows))

    assert len(chunks) > 1
    assert "".join(chunks).count("\r\n") == 5_001


def test_a_csv_reader_left_open_after_its_stream_closed_closes_cleanly() -> None:
    stream = io.BytesIO(b"a,b\r\n1,2\r\n3,4\r\n")
    rows = read_rows("tape.csv", stream)
    assert next(rows) == ["a", "b"]
    stream.close()
    rows.close()  # the caller closed its stream first: closing the reader must not raise
