"""Builds the bad-input corpus's generated files: binaries and files too big to commit.

`python -m tests.corpus.build OUT_DIR` writes every generated case of `manifest.toml` into
OUT_DIR; the corpus test calls `build(name, folder)` for the case it needs. The hostile XLSX files
are written as raw ZIP archives whose deflate stream repeats one fully flushed block, so a sheet
of gigabytes costs a few megabytes on disk and about a second (its CRC) to make.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
HEADER = "Seller Loan Number,Loan Amount,Note Rate,LTV Ratio,Credit Score,Property Type\r\n"
GOOD_ROW = "L-{n},250000,6.5,80,720,SFR\r\n"
BLOCK = 1024 * 1024


class Member:
    """One ZIP member: a prefix, a block repeated `count` times, then a suffix."""

    def __init__(self, name: str, prefix: bytes, block: bytes = b"", count: int = 0) -> None:
        self.name = name
        self.prefix = prefix
        self.block = block
        self.count = count
        self.suffix = b""

    def then(self, suffix: bytes) -> Member:
        self.suffix = suffix
        return self

    def compressed(self) -> tuple[bytes, int, int]:
        """(deflate stream, CRC-32, unpacked size) without ever holding the unpacked bytes."""
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        head = compressor.compress(self.prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
        crc = zlib.crc32(self.prefix)
        repeated = b""
        if self.count:
            repeated = compressor.compress(self.block) + compressor.flush(zlib.Z_FULL_FLUSH)
            for _ in range(self.count):
                crc = zlib.crc32(self.block, crc)
        tail = compressor.compress(self.suffix) + compressor.flush(zlib.Z_FINISH)
        crc = zlib.crc32(self.suffix, crc)
        size = len(self.prefix) + len(self.block) * self.count + len(self.suffix)
        return head + repeated * self.count + tail, crc, size


def write_zip(path: Path, members: Iterable[Member]) -> None:
    """A ZIP archive of deflated members (each under 4 GiB unpacked: no ZIP64 needed)."""
    central = b""
    with path.open("wb") as out:
        for member in members:
            data, crc, size = member.compressed()
            name = member.name.encode()
            offset = out.tell()
            fields = (20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0)
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + name + data)
            central += (
                struct.pack("<IH", 0x02014B50, 20)
                + struct.pack("<HHHHHIIIHHHHHII", *fields, 0, 0, 0, 0, offset)
                + name
            )
        start = out.tell()
        count = central.count(struct.pack("<I", 0x02014B50))
        out.write(central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), start, 0))


def workbook_members(sheet: Member, shared_strings: Member | None = None) -> list[Member]:
    """The parts of a one-sheet workbook around `sheet` (its part: xl/worksheets/sheet1.xml)."""
    strings = shared_strings or Member(
        "xl/sharedStrings.xml", f'<sst xmlns="{MAIN}" count="0" uniqueCount="0"/>'.encode()
    )
    return [
        Member(
            "[Content_Types].xml",
            (
                b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                b'<Default Extension="rels" ContentType="application/'
                b'vnd.openxmlformats-package.relationships+xml"/>'
                b'<Default Extension="xml" ContentType="application/xml"/>'
                b'<Override PartName="/xl/workbook.xml" ContentType="application/'
                b'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
                b'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
                b"</Types>"
            ),
        ),
        Member(
            "_rels/.rels",
            (
                f'<Relationships xmlns="{PKG_REL}"><Relationship Id="rId1" '
                f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
            ).encode(),
        ),
        Member(
            "xl/workbook.xml",
            (
                f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
                '<sheet name="tape" sheetId="1" r:id="rId1"/></sheets></workbook>'
            ).encode(),
        ),
        Member(
            "xl/_rels/workbook.xml.rels",
            (
                f'<Relationships xmlns="{PKG_REL}">'
                f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
                f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
                "</Relationships>"
            ).encode(),
        ),
        strings,
        sheet,
    ]


def _inline(text: str) -> str:
    return f'<c t="inlineStr"><is><t>{text}</t></is></c>'


SHEET_START = f'<worksheet xmlns="{MAIN}"><sheetData>'.encode()
SHEET_END = b"</sheetData></worksheet>"
HEADER_ROW = f"<row>{_inline('Seller Loan Number')}{_inline('Loan Amount')}</row>".encode()


def huge_rows_xlsx(path: Path) -> None:
    """A 6.7 MB-class XLSX whose sheet holds 30.6 million two-cell rows (1.3 GB of XML)."""
    row = b"<row><c><v>1</v></c><c><v>2</v></c></row>"
    per_block = BLOCK // len(row)
    sheet = Member("xl/worksheets/sheet1.xml", SHEET_START + HEADER_ROW, row * per_block)
    sheet.count = 30_600_000 // per_block
    write_zip(path, workbook_members(sheet.then(SHEET_END)))


def whitespace_xlsx(path: Path) -> None:
    """An XLSX whose sheet unpacks to 1.99 GB, almost all of it whitespace between two tags."""
    sheet = Member("xl/worksheets/sheet1.xml", SHEET_START + HEADER_ROW, b" " * BLOCK, 1_898)
    row = b"<row><c><v>1</v></c><c><v>2</v></c></row>"
    write_zip(path, workbook_members(sheet.then(row + SHEET_END)))


def zip_bomb_xlsx(path: Path) -> None:
    """An XLSX whose members unpack to 4 GB together, far beyond INGEST_MAX_UNPACKED_BYTES."""
    members = workbook_members(
        Member("xl/worksheets/sheet1.xml", SHEET_START + HEADER_ROW).then(SHEET_END)
    )
    bombs = [Member(f"xl/media/bomb{n}.bin", b"", b"\0" * BLOCK, 1_000) for n in range(4)]
    write_zip(path, members + bombs)


def billion_laughs_xlsx(path: Path) -> None:
    """An XLSX whose sheet declares nested entities (the billion laughs)."""
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">'
        for n in range(1, 10)
    )
    prologue = f"<!DOCTYPE worksheet [{entities}]>".encode()
    body = f"<row>{_inline('Seller Loan Number')}</row><row>{_inline('&lol9;')}</row>".encode()
    sheet = Member("xl/worksheets/sheet1.xml", prologue + SHEET_START + body).then(SHEET_END)
    write_zip(path, workbook_members(sheet))


def password_protected_xlsx(path: Path) -> None:
    """What Excel writes for a workbook with a password: an OLE compound file, not a ZIP.

    A minimal valid compound file: header, one FAT sector, one directory sector naming the
    `EncryptionInfo` and `EncryptedPackage` streams (their content is never read).
    """
    sector = 512
    end_of_chain, fat_sector, free = 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    header = bytearray(sector)
    header[0:8] = bytes.fromhex("d0cf11e0a1b11ae1")
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIII", header, 44, 1, 1, 0, 4096, end_of_chain, 0, end_of_chain)
    struct.pack_into("<I", header, 72, 0)
    header[76:] = struct.pack("<I", 0) + b"\xff" * (sector - 80)
    fat = struct.pack("<II", fat_sector, end_of_chain) + struct.pack("<I", free) * 126

    def entry(name: str, kind: int, child: int = free, right: int = free) -> bytes:
        encoded = (name + "\0").encode("utf-16-le")
        raw = bytearray(128)
        raw[: len(encoded)] = encoded
        struct.pack_into("<HBB", raw, 64, len(encoded), kind, 1)
        struct.pack_into("<III", raw, 68, free, right, child)
        struct.pack_into("<II", raw, 116, end_of_chain, 0)
        return bytes(raw)

    directory = (
        entry("Root Entry", 5, child=1)
        + entry("EncryptionInfo", 2, right=2)
        + entry("EncryptedPackage", 2)
        + bytes(128)
    )
    path.write_bytes(bytes(header) + fat + directory)


def png_named_csv(path: Path) -> None:
    """A 1x1 PNG image saved as `.csv`."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    image = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    image += chunk(b"IDAT", zlib.compress(b"\0\xff\0\0")) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + image)


def fifty_mb_cell_csv(path: Path) -> None:
    """A CSV whose second row holds one 50 MB cell."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        out.write("L-1,250000,6.5,80,720,")
        for _ in range(50):
            out.write("x" * BLOCK)
        out.write("\r\n")


def many_columns_csv(path: Path) -> None:
    """A CSV with 100,000 columns."""
    names = ",".join(f"c{n}" for n in range(100_000))
    path.write_text(f"{names}\r\n" + ",".join("1" for _ in range(100_000)) + "\r\n")


def good_csv(path: Path, rows: int = 3) -> None:
    """A small, valid tape."""
    path.write_text(HEADER + "".join(GOOD_ROW.format(n=n) for n in range(1, rows + 1)))


BUILDERS: dict[str, Callable[[Path], None]] = {
    "huge-rows.xlsx": huge_rows_xlsx,
    "whitespace.xlsx": whitespace_xlsx,
    "zip-bomb.xlsx": zip_bomb_xlsx,
    "billion-laughs.xlsx": billion_laughs_xlsx,
    "password-protected.xlsx": password_protected_xlsx,
    "png-named.csv": png_named_csv,
    "fifty-mb-cell.csv": fifty_mb_cell_csv,
    "many-columns.csv": many_columns_csv,
    "good.csv": good_csv,
}


def build(name: str, folder: Path) -> Path:
    """Write the generated case `name` into `folder`; its path."""
    path = folder / name
    BUILDERS[name](path)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    target.mkdir(parents=True, exist_ok=True)
    for case in BUILDERS:
        print(build(case, target))  # noqa: T201
