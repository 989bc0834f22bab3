"""A duplicate index on disk: a million seller loan numbers without a million-entry dict.

A throw-away SQLite file in a temporary folder, written without journal or fsync (it lives only
as long as one run's ingest), removed on close. New numbers are buffered in memory and written in
batches. A Bloom filter answers "never seen" for almost every new number without touching the
disk, so the database is read only for real duplicates and the filter's rare false positives.
"""

import os
import sqlite3
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from contracts.wire import RowRef

DEFAULT_BATCH = 10_000
# 2**26 bits (8 MiB), two probes: about 0.1% false positives at a million numbers, 0.4% at two.
BLOOM_BITS_LOG2 = 26
# SQLite's page cache for the index, in KiB (negative cache_size means KiB): bounded memory.
CACHE_KIB = 8 * 1024

_SCHEMA = """
CREATE TABLE seen (
    seller_loan_number TEXT PRIMARY KEY,
    file INTEGER NOT NULL,
    row INTEGER NOT NULL
) WITHOUT ROWID
"""


class SqliteDuplicateIndex:
    """A `DuplicateIndex` in a temporary SQLite file; use it as a context manager."""

    def __init__(
        self,
        directory: Path | None = None,
        batch: int = DEFAULT_BATCH,
        bloom_bits_log2: int = BLOOM_BITS_LOG2,
    ) -> None:
        handle, name = tempfile.mkstemp(prefix="duplicates-", suffix=".sqlite3", dir=directory)
        os.close(handle)
        self.path = Path(name)
        self._batch = batch
        self._pending: dict[str, RowRef] = {}
        self._files: dict[str, int] = {}
        self._file_names: list[str] = []
        self._bloom = _Bloom(bloom_bits_log2)
        # One thread at a time, not necessarily the one that opened it (asyncio.to_thread).
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._db.execute(_SCHEMA)

    def first_seen(self, seller_loan_number: str, ref: RowRef) -> RowRef | None:
        """The earlier row with this number, or None after recording `ref` as the first."""
        earlier = self._pending.get(seller_loan_number)
        if earlier is not None:
            return earlier
        if self._bloom.check_and_add(seller_loan_number):
            found = self._db.execute(
                "SELECT file, row FROM seen WHERE seller_loan_number = ?", (seller_loan_number,)
            ).fetchone()
            if found is not None:
                return RowRef(source_file=self._file_names[found[0]], row=found[1])
        self._pending[seller_loan_number] = ref
        if len(self._pending) >= self._batch:
            self._flush()
        return None

    def __len__(self) -> int:
        """How many distinct seller loan numbers have been recorded."""
        self._flush()
        (count,) = self._db.execute("SELECT count(*) FROM seen").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the database and remove its file."""
        self._pending.clear()
        self._db.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _flush(self) -> None:
        """Write the buffered first occurrences in one transaction."""
        if not self._pending:
            return
        rows = [
            (number, self._file_id(ref.source_file), ref.row)
            for number, ref in self._pending.items()
        ]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO seen VALUES (?, ?, ?)", rows)
        self._pending.clear()

    def _file_id(self, source_file: str) -> int:
        """A small integer for a file name: a run has few files and a million rows."""
        file_id = self._files.get(source_file)
        if file_id is None:
            file_id = self._files[source_file] = len(self._file_names)
            self._file_names.append(source_file)
        return file_id


class _Bloom:
    """A Bloom filter over str with two probes: "never added" is certain, "maybe" needs checking.

    It uses the built-in `hash`, which is salted per process: fine, the filter never leaves it.
    """

    def __init__(self, bits_log2: int) -> None:
        self._mask = (1 << bits_log2) - 1
        self._bits = bytearray(1 << (bits_log2 - 3))

    def check_and_add(self, key: str) -> bool:
        """Record a key; False when it was certainly never recorded before."""
        value = hash(key) & 0xFFFFFFFFFFFFFFFF
        first = value & self._mask
        second = (value >> 32) & self._mask
        bits = self._bits
        first_byte, first_bit = first >> 3, 1 << (first & 7)
        second_byte, second_bit = second >> 3, 1 << (second & 7)
        seen = bool(bits[first_byte] & first_bit) and bool(bits[second_byte] & second_bit)
        bits[first_byte] |= first_bit
        bits[second_byte] |= second_bit
        return seen
