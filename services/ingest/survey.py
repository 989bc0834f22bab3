"""A cheap first pass over a tape file, before any of its loans is published.

Reading a tape and publishing its loans overlap, so a limit found deep in a file would come after
millions of loans were already out. The survey finds the file-level failures first, at a fraction
of the cost of reading: a CSV is parsed once by the csv module (encoding, NUL bytes, rows, columns
and field sizes, exactly as the reader will meet them); an XLSX is scanned as bytes, never parsed:
the rows of its first worksheet are counted as openpyxl will number them, and every XML part
openpyxl would parse is checked for a run of text longer than any cell may hold (a sheet of
gigabytes of whitespace would otherwise make the XML parser build a gigabyte string).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import IO, BinaryIO

from openpyxl.reader.excel import ExcelReader

from services.ingest.errors import UnreadableTape
from services.ingest.readers import (
    BROKEN_XLSX,
    ReadLimits,
    check_archive,
    checked_rows,
    csv_rows,
)

CHUNK_BYTES = 1024 * 1024
MAX_TAG_BYTES = 64 * 1024
# `<row ...>` or `<x:row ...>` (a namespace prefix), then its attributes; `rowBreaks` never
# matches because `row` must be followed by a space, `/` or `>`.
_PREFIXED_ROW = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?row(?=[\s/>])([^>]*)>")
_ROW = re.compile(rb"<row(?=[\s/>])([^>]*)>")
_ROW_WITH_ATTRIBUTES = re.compile(rb"<row\s")
_ROW_NUMBER = re.compile(rb"(?:^|\s)r\s*=\s*[\"']\s*(\d+)")
# The parts openpyxl parses whole or streams when it opens a workbook (worksheets are surveyed
# on their own: only the first is ever read).
_PARSED_SUFFIXES = (".xml", ".rels")

Stopping = Callable[[], bool]


def survey_tape(
    name: str, stream: BinaryIO, limits: ReadLimits, stopping: Stopping = lambda: False
) -> None:
    """Raise the UnreadableTape reading `stream` would raise for the file as a whole.

    Leaves the stream at its start. `stopping` is asked between chunks: when it answers True the
    survey ends early (the caller abandons the tape).
    """
    suffix = PurePosixPath(name).suffix.lower()
    try:
        if suffix == ".csv":
            for count, _ in enumerate(checked_rows(name, csv_rows(name, stream), limits)):
                if count % 10_000 == 0 and stopping():
                    return
        elif suffix == ".xlsx":
            _survey_xlsx(name, stream, limits, stopping)
    finally:
        stream.seek(0)


def _survey_xlsx(name: str, stream: IO[bytes], limits: ReadLimits, stopping: Stopping) -> None:
    check_archive(name, stream, limits)
    try:
        reader = ExcelReader(stream, read_only=True, data_only=True)
    except BROKEN_XLSX as error:
        raise UnreadableTape(name, "is not a readable XLSX workbook") from error
    archive = reader.archive
    try:
        for info in archive.infolist():
            part = info.filename
            if part.lower().endswith(_PARSED_SUFFIXES) and not part.startswith("xl/worksheets/"):
                _scan(name, archive, part, limits, stopping, count_rows=False)
        try:
            reader.read_manifest()
            reader.read_workbook()
            sheet = _first_worksheet(reader)
        except BROKEN_XLSX as error:
            raise UnreadableTape(name, "is not a readable XLSX workbook") from error
        if sheet is None:
            raise UnreadableTape(name, "has no worksheet")
        rows = _scan(name, archive, sheet, limits, stopping, count_rows=True)
        if rows > limits.max_rows + 1:
            raise UnreadableTape(name, f"has more than {limits.max_rows} data rows, the limit")
    finally:
        archive.close()


def _first_worksheet(reader: ExcelReader) -> str | None:
    """The part of the first worksheet in workbook order, as openpyxl chooses it."""
    for _, rel in reader.parser.find_sheets():
        if rel.target in reader.valid_files and "chartsheet" not in rel.Type:
            return str(rel.target)
    return None


def _scan(
    name: str,
    archive: zipfile.ZipFile,
    part: str,
    limits: ReadLimits,
    stopping: Stopping,
    *,
    count_rows: bool,
) -> int:
    """Check a part's runs of text and, for a worksheet, count the rows the reader will yield.

    openpyxl numbers a row by its `r` attribute, or as the previous row's number plus one, and
    yields every row up to the highest number (gaps as empty rows): that highest number is what
    the reader's row limit meets. Runs of text are measured across chunk boundaries; inside a
    chunk, which is never longer than the limit, no run can pass it.
    """
    size = min(CHUNK_BYTES, limits.max_cell_bytes)
    counter = _RowCounter()
    run = 0  # bytes of text since the last `<` or `>`
    with archive.open(part) as source:
        while chunk := source.read(size):
            if stopping():
                break
            run = _measure_runs(name, part, chunk, run, limits.max_cell_bytes)
            if count_rows and counter.feed(chunk) > limits.max_rows + 1:
                break
    return counter.finish() if count_rows else 0


class _RowCounter:
    """Counts a worksheet's rows as openpyxl numbers them, from chunks of its XML."""

    def __init__(self) -> None:
        self.number = 0
        self.highest = 0
        self.carry = b""  # an unfinished tag at the end of the last chunk

    def feed(self, chunk: bytes) -> int:
        """Count the rows of a chunk; the highest row number so far."""
        text = self.carry + chunk
        cut = text.rfind(b"<")
        if cut >= 0 and text.find(b">", cut) < 0:
            # An unfinished tag waits for the next chunk; no row tag is longer than this.
            self.carry = text[cut : cut + MAX_TAG_BYTES]
            self._count(text, cut)
        else:
            self.carry = b""
            self._count(text, len(text))
        return self.highest

    def finish(self) -> int:
        """The highest row number of the whole part."""
        self._count(self.carry, len(self.carry))
        self.carry = b""
        return self.highest

    def _count(self, text: bytes, end: int) -> None:
        segment = text[:end]
        if b":row" in segment:  # rows with a namespace prefix: the general pattern
            found_rows = _PREFIXED_ROW.findall(segment)
        elif _ROW_WITH_ATTRIBUTES.search(segment) is None:  # bare rows count one by one
            self.number += segment.count(b"<row>") + segment.count(b"<row/>")
            self.highest = max(self.highest, self.number)
            return
        else:
            found_rows = _ROW.findall(segment)
        number, highest = self.number, self.highest
        for attributes in found_rows:
            found = _ROW_NUMBER.search(attributes) if b"r" in attributes else None
            number = int(found.group(1)) if found is not None else number + 1
            if number > highest:
                highest = number
        self.number, self.highest = number, highest


def _measure_runs(name: str, part: str, chunk: bytes, run: int, limit: int) -> int:
    """The run of text still open at the chunk's end; UnreadableTape if one passed the limit."""
    first = _first_delimiter(chunk)
    run += len(chunk) if first < 0 else first
    if run > limit:
        raise UnreadableTape(
            name,
            f"is not a readable XLSX workbook: its part {part} holds more than {limit} bytes "
            "of text in one place, more than any cell may hold (INGEST_MAX_CELL_BYTES)",
        )
    if first < 0:
        return run
    return len(chunk) - 1 - max(chunk.rfind(b"<"), chunk.rfind(b">"))


def _first_delimiter(chunk: bytes) -> int:
    opening, closing = chunk.find(b"<"), chunk.find(b">")
    if opening < 0 or closing < 0:
        return max(opening, closing)
    return min(opening, closing)
