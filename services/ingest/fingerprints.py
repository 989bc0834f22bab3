"""What a producer's tape was: a hash per row and a digest of rows and parameters.

A tape id names one run (its run id derives from it), so a completed tape cannot change: pushing
it again with the same rows and parameters replays the same events (idempotent), but a row that
differs, a row beyond its count or different parameters would quietly mix two tapes into one
run. Ingest keeps, per completed tape, an 8-byte hash of each row (row N at bytes 8(N-1)..8N)
and a digest of all of them with the end marker's parameters, and refuses anything else with a
dead letter that says to push it under a new tape id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import orjson

from contracts.ids import tape_run_id
from contracts.loans import RunParams

ROW_HASH_BYTES = 8
NEW_TAPE_ID = "push it under a new tape id"


def row_hash(fields: Mapping[str, str | None]) -> bytes:
    """A row's cells, whatever the order of their columns, as 8 bytes."""
    text = orjson.dumps(dict(fields), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(text, digest_size=ROW_HASH_BYTES).digest()


def end_text(rows: int, params: RunParams) -> str:
    """A tape's row count and run parameters as text (the IRR as its exact, normalised number)."""
    irr = format(params.irr_target.normalize(), "f")
    return f"rows={rows};pdate={params.pdate.isoformat()};irr={irr};team={params.sales_team_id}"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A complete tape's row hashes, in row order, and its digest with the end marker's text."""

    hashes: bytes
    digest: str


@dataclass(slots=True)
class TapeHasher:
    """Hashes a tape's rows as they pass by (rows 1..N, in order)."""

    parts: list[bytes] = field(default_factory=list)

    def passing(
        self, rows: Iterator[tuple[int, dict[str, str | None]]]
    ) -> Iterator[tuple[int, dict[str, str | None]]]:
        """The same rows, each hashed on its way."""
        for number, fields in rows:
            self.parts.append(row_hash(fields))
            yield number, fields

    def fingerprint(self, rows: int, params: RunParams) -> Fingerprint:
        """The fingerprint of the rows seen, with the tape's count and run parameters."""
        hashes = b"".join(self.parts)
        digest = hashlib.sha256(end_text(rows, params).encode() + b"\n" + hashes).hexdigest()
        return Fingerprint(hashes, digest)


def refused_repush(tape_id: str, why: str) -> str:
    """The dead-letter reason of an end marker re-pushing a completed tape with other content."""
    return (
        f"tape {tape_id!r} already completed as run {tape_run_id(tape_id)} and this push "
        f"differs from it ({why}); a completed tape cannot change: {NEW_TAPE_ID}"
    )


def row_beyond_completed(tape_id: str, row: int, count: int) -> str:
    """The dead-letter reason of a row numbered beyond a completed tape's count."""
    return (
        f"row {row} of tape {tape_id!r} came after its end marker: the tape completed as run "
        f"{tape_run_id(tape_id)} with {count} rows and cannot change: {NEW_TAPE_ID}"
    )


def row_differs_from_completed(tape_id: str, row: int) -> str:
    """The dead-letter reason of a row that differs from the completed tape's row."""
    return (
        f"row {row} of tape {tape_id!r} came after its end marker and differs from the row the "
        f"tape completed with (run {tape_run_id(tape_id)}); a completed tape cannot change: "
        f"{NEW_TAPE_ID}"
    )


def row_pushed_twice(tape_id: str, row: int) -> str:
    """The dead-letter reason of a row number sent again with different fields in one push."""
    return (
        f"row {row} of tape {tape_id!r} was already pushed with different fields; the first is "
        f"kept, since a row cannot change within a push: to change it, {NEW_TAPE_ID}"
    )
