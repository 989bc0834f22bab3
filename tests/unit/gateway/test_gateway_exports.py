"""Export cells are safe from formula injection, in CSV and in XLSX."""

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openpyxl import load_workbook

from services.gateway.facts.exports import COLUMNS, csv_stream, escape_cell, xlsx_stream


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_text_that_could_start_a_formula_is_prefixed(text: str) -> None:
    assert escape_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["plain", "1=1", "", None, 5, "'=already"])
def test_other_values_are_left_alone(value: Any) -> None:
    assert escape_cell(value) == value


async def rows_of(rows: list[list[Any]]) -> AsyncIterator[list[Any]]:
    for row in rows:
        yield row


def a_row(seller: str) -> list[Any]:
    row: list[Any] = ["x"] * len(COLUMNS)
    row[COLUMNS.index("seller_loan_number")] = escape_cell(seller)
    row[COLUMNS.index("row")] = 7
    return row


async def test_the_csv_stream_starts_with_the_header_and_keeps_every_row() -> None:
    rows = [a_row(f"L-{i}") for i in range(3000)] + [a_row("=cmd|' /C calc'!A0")]
    body = b"".join([chunk async for chunk in csv_stream(rows_of(rows))])
    parsed = list(csv.reader(io.StringIO(body.decode())))
    assert parsed[0] == list(COLUMNS)
    assert len(parsed) == 3002
    assert parsed[-1][COLUMNS.index("seller_loan_number")] == "'=cmd|' /C calc'!A0"


async def test_the_xlsx_stream_is_a_workbook_without_formulas() -> None:
    rows = [a_row('=HYPERLINK("http://x")'), a_row("bell\x07char")]
    body = b"".join([chunk async for chunk in xlsx_stream(rows_of(rows))])
    sheet = load_workbook(io.BytesIO(body)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == list(COLUMNS)
    seller = COLUMNS.index("seller_loan_number")
    assert values[1][seller] == '\'=HYPERLINK("http://x")'
    assert values[2][seller] == "bellchar"
    assert values[1][COLUMNS.index("row")] == 7
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
