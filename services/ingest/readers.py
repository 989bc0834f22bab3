"""Tape files to rows of cell text (SPEC §3.1), and a producer's tape back to CSV for the archive.

A CSV is strict UTF-8 (with or without BOM); an XLSX is its first worksheet in workbook order,
read in openpyxl's streaming mode with defusedxml guarding the XML. Both stream: memory stays flat
however long the tape. Every problem with the file itself is an `UnreadableTape`.
"""

import contextlib
import csv
import io
import math
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import IO, BinaryIO
from xml.etree.ElementTree import ParseError

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from services.ingest.domain import is_blank_row
from services.ingest.errors import UnreadableTape

TAPE_SUFFIXES = (".csv", ".xlsx")
# Office lock files (`~$tape.xlsx`) and hidden files (`._tape.csv` from macOS) are never tapes.
IGNORED_PREFIXES = ("~$", ".")
# A non-seekable XLSX stream is spooled; up to this size it stays in memory.
SPOOL_IN_MEMORY_BYTES = 32 * 1024 * 1024
CSV_CHUNK_CHARS = 64 * 1024
# An OLE compound file (what Excel writes an encrypted workbook, or an old .xls, into) starts so;
# its directory, naming its streams in UTF-16, lies near the start of a small file.
CFB_SIGNATURE = bytes.fromhex("d0cf11e0a1b11ae1")
CFB_SCAN_BYTES = 64 * 1024
ENCRYPTION_STREAMS = ("EncryptedPackage", "EncryptionInfo")
# What a broken or hostile XLSX makes openpyxl, zipfile or defusedxml raise (defusedxml's
# EntitiesForbidden is a ValueError). OSError is left alone: a failing stream may be transient.
BROKEN_XLSX = (
    zipfile.BadZipFile,
    InvalidFileException,
    ParseError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    EOFError,
    zlib.error,
)


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds that stop an absurd or hostile file from eating the machine."""

    max_rows: int = 5_000_000
    max_columns: int = 1_000
    max_unpacked_bytes: int = 2 * 1024**3
    max_cell_bytes: int = 1024 * 1024


def is_tape_file(name: str) -> bool:
    """Whether a file name is a tape: `.csv` or `.xlsx` (any case), not a lock or hidden file."""
    base = PurePosixPath(name).name
    return base.lower().endswith(TAPE_SUFFIXES) and not base.startswith(IGNORED_PREFIXES)


def read_rows(
    name: str, stream: BinaryIO, limits: ReadLimits = ReadLimits()
) -> Iterator[list[str]]:
    """The header row, then every row of a tape file, as cell texts ("" for an empty cell)."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".csv":
        return checked_rows(name, csv_rows(name, stream), limits)
    if suffix == ".xlsx":
        return checked_rows(name, _xlsx_rows(name, stream, limits), limits)
    raise UnreadableTape(name, "is not a tape file: only .csv and .xlsx files are read")


def checked_rows(name: str, rows: Iterator[list[str]], limits: ReadLimits) -> Iterator[list[str]]:
    """Rows with trailing empty cells dropped, within the limits, with a header and data."""
    count = 0
    has_data = False
    for cells in rows:
        count += 1
        if count > limits.max_rows + 1:
            raise UnreadableTape(name, f"has more than {limits.max_rows} data rows, the limit")
        # Trailing empty cells carry nothing (the normaliser pads short rows) but spreadsheets
        # are full of them: formatted cells far to the right must not count as columns.
        while cells and not cells[-1]:
            cells.pop()
        if len(cells) > limits.max_columns:
            raise UnreadableTape(name, f"has more than {limits.max_columns} columns")
        blank = is_blank_row(cells)
        if count == 1 and blank:
            raise UnreadableTape(name, "has an empty first row: a tape's first row is its header")
        has_data = has_data or (count > 1 and not blank)
        yield cells
    if count == 0:
        raise UnreadableTape(name, "is empty")
    if not has_data:
        raise UnreadableTape(name, "has a header but no data rows")


def csv_rows(name: str, stream: BinaryIO) -> Iterator[list[str]]:
    """A CSV's rows, decoded as strict UTF-8 so a wrong encoding fails instead of garbling."""
    counted = _NewlineCounter(stream)
    text = io.TextIOWrapper(counted, encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.reader(text)
    try:
        yield from reader
    except UnicodeDecodeError as error:
        line = counted.line_of(error)
        reason = f"is not UTF-8 text (invalid bytes on line {line}); save it as CSV UTF-8"
        raise UnreadableTape(name, reason) from error
    except _NulByte as error:
        # Valid UTF-8, but no text file holds NUL: UTF-16 without a BOM reads this way, and no
        # report or database column could keep it.
        reason = f"is not UTF-8 text (a NUL byte on line {error.line}); save it as CSV UTF-8"
        raise UnreadableTape(name, reason) from None
    except csv.Error as error:
        reason = f"is not a readable CSV (line {reader.line_num}: {error})"
        raise UnreadableTape(name, reason) from error
    finally:
        # The caller owns the stream: closing the wrapper must not close it (already closed: fine).
        with contextlib.suppress(ValueError):
            text.detach()


class _NulByte(Exception):
    """A NUL byte in a CSV, on a 1-based line."""

    def __init__(self, line: int) -> None:
        super().__init__(f"NUL byte on line {line}")
        self.line = line


class _NewlineCounter(io.BufferedIOBase):
    """A pass-through reader that counts the newlines before the chunk last handed out, and
    refuses a chunk holding a NUL byte.

    The text layer decodes whole chunks, so a decoding error knows its offset in the chunk only;
    with the newlines before it, that becomes the file's line number.
    """

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self._before = 0
        self._in_last = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._counted(self._stream.read(-1 if size is None else size))

    def read1(self, size: int = -1) -> bytes:
        read1 = getattr(self._stream, "read1", None)
        return self._counted(read1(size) if read1 is not None else self._stream.read(size))

    def line_of(self, error: UnicodeDecodeError) -> int:
        """The 1-based line of a decoding error raised on the last chunk."""
        return self._before + error.object[: error.start].count(b"\n") + 1

    def _counted(self, chunk: bytes) -> bytes:
        self._before += self._in_last
        self._in_last = chunk.count(b"\n")
        if (at := chunk.find(b"\x00")) >= 0:
            raise _NulByte(self._before + chunk[:at].count(b"\n") + 1)
        return chunk


def _xlsx_rows(name: str, stream: BinaryIO, limits: ReadLimits) -> Iterator[list[str]]:
    """The first worksheet's rows as cell texts, streamed."""
    source: IO[bytes] = stream if stream.seekable() else _spooled(stream)
    try:
        check_archive(name, source, limits)
        try:
            workbook = load_workbook(source, read_only=True, data_only=True)
        except BROKEN_XLSX as error:
            raise UnreadableTape(name, "is not a readable XLSX workbook") from error
        try:
            if not workbook.worksheets:
                raise UnreadableTape(name, "has no worksheet")
            sheet = workbook.worksheets[0]
            # A declared dimension can lie (A1:XFD1048576) and would pad every row to it.
            sheet.reset_dimensions()
            for values in sheet.iter_rows(values_only=True):
                yield [cell_text(value) for value in values]
        except BROKEN_XLSX as error:
            raise UnreadableTape(name, "is not a readable XLSX workbook") from error
        finally:
            workbook.close()
    finally:
        if source is not stream:
            source.close()


def _spooled(stream: BinaryIO) -> IO[bytes]:
    """A seekable copy of a stream (openpyxl needs to seek inside the zip archive)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
    shutil.copyfileobj(stream, spool)
    spool.seek(0)
    return spool


def check_archive(name: str, source: IO[bytes], limits: ReadLimits) -> None:
    """Refuse what is not a zip, or what would unpack to more than the limit (a zip bomb)."""
    if source.read(len(CFB_SIGNATURE)) == CFB_SIGNATURE:
        source.seek(0)
        raise UnreadableTape(name, _compound_file_reason(source))
    source.seek(0)
    try:
        with zipfile.ZipFile(source) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as error:
        raise UnreadableTape(name, "is not a readable XLSX workbook (not a zip archive)") from error
    finally:
        source.seek(0)
    if unpacked > limits.max_unpacked_bytes:
        raise UnreadableTape(
            name, f"unpacks to {unpacked} bytes, more than the limit of {limits.max_unpacked_bytes}"
        )


def _compound_file_reason(source: IO[bytes]) -> str:
    """Why an OLE compound file is no XLSX: Excel encrypts a workbook into one, or it is an .xls."""
    head = source.read(CFB_SCAN_BYTES)
    # The header names the directory's first sector (offset 48) and the sector size (offset 30).
    shift = int.from_bytes(head[30:32], "little")
    sector_size = 1 << (shift if shift in (9, 12) else 9)
    directory = (int.from_bytes(head[48:52], "little") + 1) * sector_size
    source.seek(directory)
    names = head + source.read(sector_size * 4)
    source.seek(0)
    if any(stream.encode("utf-16-le") in names for stream in ENCRYPTION_STREAMS):
        return (
            "is password-protected (an encrypted workbook), so it cannot be read: "
            "save it again without a password"
        )
    return "is not an XLSX workbook but an older Office file (.xls?): save it as .xlsx"


def cell_text(value: object) -> str:
    """An XLSX cell's value as tape text (SPEC §3.1): numbers, booleans, dates, text, errors."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value  # text, error text (#N/A) and a formula's cached text alike
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, datetime):
        if value.time() == time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(timespec="seconds" if value.microsecond == 0 else "auto")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="seconds" if value.microsecond == 0 else "auto")
    if isinstance(value, timedelta):
        # A duration-formatted cell holds a number of days; read the number it holds.
        return number_text(value / timedelta(days=1))
    return str(value)


def number_text(value: float) -> str:
    """A binary float as its shortest round-trip decimal text, with no fraction when whole."""
    if not math.isfinite(value):
        return repr(value)  # inf / nan: text the numeric parser rejects as invalid
    # repr is the shortest text that reads back as the same float; 'f' keeps it positional. A
    # whole float is not `int(value)`: 1.23456789012345e19 holds 12345678901234499584 in binary,
    # but its shortest text is 12345678901234500000 (what Excel shows, and a CSV of it holds).
    # Zero is "0" whatever its sign: a reader that takes `<v>-0</v>` for an integer has no -0.
    if value == 0:
        return "0"
    shortest = Decimal(repr(value))
    return format(shortest.to_integral_value() if value.is_integer() else shortest, "f")


def rebuild_tape_csv(
    columns: Sequence[str], rows: Iterable[tuple[int, Mapping[str, str | None]]]
) -> Iterator[str]:
    """A producer's tape as CSV text in chunks: its original column names, then every row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for _, cells in rows:
        writer.writerow([cells.get(column) or "" for column in columns])
        if buffer.tell() >= CSV_CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
