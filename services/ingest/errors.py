"""Ingest's error tree: permanent tape errors whose message is shown to the user.

Standard library only, so the pure domain may raise them. Transient faults (broker, storage) are
not tape errors: the service wiring retries those.
"""

from collections.abc import Iterable, Sequence

# A message listing missing rows names at most this many, then says how many more there are.
MISSING_ROWS_SHOWN = 10


class IngestError(Exception):
    """Base of every error raised by ingest."""


class TapeError(IngestError):
    """A permanent problem with a tape: the run fails and its message says why."""


class UnreadableTape(TapeError):
    """A file that cannot be read as a tape: bad encoding, broken XLSX, empty, absurd size."""

    def __init__(self, source_file: str, reason: str) -> None:
        super().__init__(f"{source_file}: {reason}")
        self.source_file = source_file
        self.reason = reason


class ColumnClash(TapeError):
    """Two or more columns of one file normalise to the same name (SPEC §3.1)."""

    def __init__(self, source_file: str, clashes: Sequence[tuple[str, Sequence[str]]]) -> None:
        described = "; ".join(
            f"columns {_quoted(columns)} all normalise to {name!r}" for name, columns in clashes
        )
        super().__init__(f"{source_file}: {described}")
        self.source_file = source_file
        self.clashes = tuple((name, tuple(columns)) for name, columns in clashes)


class MissingRows(TapeError):
    """A producer's tape whose end marker counts rows that never arrived (SPEC §2)."""

    def __init__(self, tape_id: str, expected_rows: int, missing: Sequence[int]) -> None:
        shown = ", ".join(str(row) for row in missing[:MISSING_ROWS_SHOWN])
        more = len(missing) - MISSING_ROWS_SHOWN
        suffix = f" and {more} more" if more > 0 else ""
        super().__init__(
            f"tape {tape_id!r} is incomplete: its end marker says {expected_rows} rows "
            f"but {len(missing)} did not arrive (rows {shown}{suffix})"
        )
        self.tape_id = tape_id
        self.expected_rows = expected_rows
        self.missing = tuple(missing)


def _quoted(columns: Iterable[str]) -> str:
    """Column names quoted and joined for a message: `'A', 'a' and 'A '`."""
    names = [repr(column) for column in columns]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
