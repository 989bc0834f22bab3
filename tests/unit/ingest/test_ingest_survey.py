"""The first pass over a tape file: file-level failures found before any loan is published."""

import io
from pathlib import Path

import pytest

from services.ingest.errors import UnreadableTape
from services.ingest.readers import ReadLimits, read_rows
from services.ingest.survey import survey_tape
from tests.corpus.build import password_protected_xlsx
from tests.unit.ingest.xlsx_parts import sheet_xml, workbook_bytes

HEADER = "Seller Loan Number,Loan Amount\r\n"


def survey(name: str, data: bytes, limits: ReadLimits = ReadLimits()) -> None:
    survey_tape(name, io.BytesIO(data), limits)


def rows_read(name: str, data: bytes) -> int:
    return len(list(read_rows(name, io.BytesIO(data))))


def cell(text: str) -> str:
    return f'<c t="inlineStr"><is><t>{text}</t></is></c>'


def test_a_csv_over_the_row_limit_fails_in_the_survey() -> None:
    data = (HEADER + "".join(f"L-{n},1\r\n" for n in range(11))).encode()

    with pytest.raises(UnreadableTape, match="more than 10 data rows"):
        survey("tape.csv", data, ReadLimits(max_rows=10))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ((HEADER + "L-1,caf\xe9\r\n").encode("latin-1"), "not UTF-8"),
        (b"", "is empty"),
        (HEADER.encode(), "header but no data rows"),
        (("a," * 2000 + "\r\n1\r\n").encode(), "more than 1000 columns"),
    ],
    ids=["latin-1", "empty", "header-only", "too-many-columns"],
)
def test_a_csv_the_reader_would_refuse_is_refused_by_the_survey(data: bytes, expected: str) -> None:
    with pytest.raises(UnreadableTape, match=expected):
        survey("tape.csv", data)


def test_a_good_file_passes_and_the_stream_is_left_at_its_start() -> None:
    stream = io.BytesIO((HEADER + "L-1,1\r\n").encode())

    survey_tape("tape.csv", stream, ReadLimits())

    assert stream.tell() == 0
    assert list(read_rows("tape.csv", stream)) == [
        ["Seller Loan Number", "Loan Amount"],
        ["L-1", "1"],
    ]


@pytest.mark.parametrize(
    "rows",
    [
        "".join(f"<row>{cell('x')}</row>" for _ in range(12)),
        f'<row r="1">{cell("x")}</row><row r="12">{cell("x")}</row>',
        f'<row r="1">{cell("x")}</row><row r="11">{cell("x")}</row><row>{cell("x")}</row>',
        f'<row r="1">{cell("x")}</row><row r="12">{cell("x")}</row><row r="2">{cell("x")}</row>',
        f'<row r="1" spans="1:1">{cell("x")}</row><row r="5"/><row r = \'12\'>{cell("x")}</row>',
    ],
    ids=["unnumbered", "gap", "numbered-then-not", "descending", "self-closing"],
)
def test_xlsx_rows_are_counted_as_the_reader_numbers_them(rows: str) -> None:
    data = workbook_bytes([("tape", sheet_xml(rows))])
    assert rows_read("tape.xlsx", data) == 12

    survey("tape.xlsx", data, ReadLimits(max_rows=11))
    with pytest.raises(UnreadableTape, match="more than 10 data rows"):
        survey("tape.xlsx", data, ReadLimits(max_rows=10))


def test_rows_with_a_namespace_prefix_are_counted() -> None:
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rows = "".join(
        f'<x:row r="{n}"><x:c t="inlineStr"><x:is><x:t>v</x:t></x:is></x:c></x:row>'
        for n in range(1, 13)
    )
    sheet = f'<x:worksheet xmlns:x="{main}"><x:sheetData>{rows}</x:sheetData></x:worksheet>'
    data = workbook_bytes([("tape", sheet)])
    assert rows_read("tape.xlsx", data) == 12

    with pytest.raises(UnreadableTape, match="more than 10 data rows"):
        survey("tape.xlsx", data, ReadLimits(max_rows=10))


def test_rows_split_across_chunks_are_counted_once() -> None:
    # A small cell limit makes small chunks, so row tags straddle chunk boundaries.
    rows = "".join(f'<row r="{n}" spans="1:1">{cell("v")}</row>' for n in range(1, 201))
    data = workbook_bytes([("tape", sheet_xml(rows))])

    survey("tape.xlsx", data, ReadLimits(max_rows=199, max_cell_bytes=200))
    with pytest.raises(UnreadableTape, match="more than 198 data rows"):
        survey("tape.xlsx", data, ReadLimits(max_rows=198, max_cell_bytes=200))


def test_only_the_first_worksheet_in_workbook_order_is_counted() -> None:
    short = sheet_xml(f"<row>{cell('a')}</row><row>{cell('b')}</row>")
    long = sheet_xml("".join(f"<row>{cell('x')}</row>" for _ in range(50)))

    survey(
        "tape.xlsx", workbook_bytes([("first", short), ("second", long)]), ReadLimits(max_rows=5)
    )


@pytest.mark.parametrize(
    ("sheet", "strings"),
    [
        (sheet_xml(f"<row>{cell('a')}</row>" + " " * 5_000 + f"<row>{cell('b')}</row>"), ()),
        (sheet_xml(f"<row>{cell('x' * 5_000)}</row>"), ()),
        (sheet_xml('<row><c t="s"><v>0</v></c></row>'), ("y" * 5_000,)),
    ],
    ids=["whitespace-between-rows", "long-cell", "long-shared-string"],
)
def test_a_run_of_text_longer_than_any_cell_is_refused_before_parsing(
    sheet: str, strings: tuple[str, ...]
) -> None:
    data = workbook_bytes([("tape", sheet)], shared_strings=strings)

    with pytest.raises(UnreadableTape, match="more than 4096 bytes of text in one place"):
        survey("tape.xlsx", data, ReadLimits(max_cell_bytes=4096))


def test_a_cell_within_the_limit_passes() -> None:
    data = workbook_bytes(
        [("tape", sheet_xml(f"<row>{cell('h')}</row><row>{cell('x' * 4_000)}</row>"))]
    )

    survey("tape.xlsx", data, ReadLimits(max_cell_bytes=4096))


def test_a_password_protected_workbook_is_named_so(tmp_path: Path) -> None:
    path = tmp_path / "tape.xlsx"
    password_protected_xlsx(path)

    with pytest.raises(UnreadableTape, match="is password-protected"):
        survey("tape.xlsx", path.read_bytes())
    with pytest.raises(UnreadableTape, match="is password-protected"):
        rows_read("tape.xlsx", path.read_bytes())


def test_an_old_office_file_is_told_apart_from_an_encrypted_workbook() -> None:
    data = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(1024)

    with pytest.raises(UnreadableTape, match="older Office file"):
        survey("tape.xlsx", data)


def test_a_survey_asked_to_stop_returns_without_a_verdict() -> None:
    data = (HEADER + "".join(f"L-{n},1\r\n" for n in range(50))).encode()

    survey_tape("tape.csv", io.BytesIO(data), ReadLimits(max_rows=10), stopping=lambda: True)
