"""Ingest's durable local state in SQLite: the producer-tape spool and the runs ingest started.

The spool is a cache, not the system of record. A partition's offset is committed only to a point
that no tape straddles: never past the first row of a tape still open, nor past the first row of
an ended tape whose end marker lies beyond that point. A lost spool is therefore rebuilt by
replaying the topic from the committed offset: every end marker replayed finds all of its rows
replayed before it. Re-delivered rows are harmless (INSERT OR IGNORE by tape and row number) and
rows may arrive in any order.

An open tape whose end marker never comes would hold its partition's commit back forever, so it
expires: once its newest row was spooled (ingest's wall clock when it first read that offset; a
replay does not count) longer ago than the TTL, its rows and its hold on the commit are dropped
and the expiry is remembered, so a late end marker fails its run with a clear error. Replayed
rows of the expired push stay dropped; a row at a later offset starts the tape afresh.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from contracts.codec import decode, encode
from contracts.runs import RunStarted
from services.ingest.fingerprints import (
    ROW_HASH_BYTES,
    row_beyond_completed,
    row_differs_from_completed,
    row_hash,
    row_pushed_twice,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS tape_rows (
    tape_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    fields BLOB NOT NULL,
    PRIMARY KEY (tape_id, row)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS open_tapes (
    tape_id TEXT PRIMARY KEY,
    partition INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    last_offset INTEGER NOT NULL,
    arrived_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS expired_tapes (
    tape_id TEXT PRIMARY KEY,
    partition INTEGER NOT NULL,
    last_offset INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    arrived_at REAL NOT NULL,
    expired_at REAL NOT NULL,
    ttl_seconds INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tape_spans (
    partition INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    end_offset INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tape_spans_by_end ON tape_spans (partition, end_offset);
CREATE TABLE IF NOT EXISTS ended_tapes (
    tape_id TEXT PRIMARY KEY,
    partition INTEGER NOT NULL,
    end_offset INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    rows INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS completed_rows (
    tape_id TEXT PRIMARY KEY,
    hashes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS started_runs (
    run_id TEXT PRIMARY KEY,
    event BLOB NOT NULL
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create) the state database: WAL, so the spool and the ledger share one file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The tape consumer and the runs handler each hold a connection; wait on a busy writer.
    connection = sqlite3.connect(
        path, isolation_level="DEFERRED", check_same_thread=False, timeout=60
    )
    connection.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode loses at most the last transactions on power loss, never consistency;
    # the topic replay (offsets committed behind open tapes) restores anything lost.
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(SCHEMA)
    connection.commit()
    _add_expiry_columns(connection)
    _add_column(connection, "tape_rows", "offset", "INTEGER")
    _add_column(connection, "ended_tapes", "digest", "TEXT")
    return connection


def _add_column(connection: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    """Upgrade a spool written before `table` had `column` (its old rows hold NULL)."""
    columns = {found[1] for found in connection.execute(f"PRAGMA table_info({table})")}
    if column not in columns:
        with connection:
            connection.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {kind}')


def _add_expiry_columns(connection: sqlite3.Connection) -> None:
    """Upgrade a spool written before tapes expired: its open tapes' clocks start now."""
    columns = {column[1] for column in connection.execute("PRAGMA table_info(open_tapes)")}
    if "arrived_at" in columns:
        return
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "ALTER TABLE open_tapes ADD COLUMN last_offset INTEGER NOT NULL DEFAULT 0"
        )
        connection.execute("ALTER TABLE open_tapes ADD COLUMN arrived_at REAL NOT NULL DEFAULT 0")
        connection.execute(
            "UPDATE open_tapes SET last_offset = first_offset, arrived_at = ?", (time.time(),)
        )


@dataclass(frozen=True, slots=True)
class SpooledRow:
    """One producer row as it arrived, with where it came from."""

    tape_id: str
    row: int
    fields: dict[str, str | None]
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Completeness:
    """How a tape's spooled rows compare with its end marker's row count."""

    expected: int
    missing: tuple[int, ...]
    missing_count: int
    beyond: tuple[int, ...]
    beyond_count: int

    @property
    def complete(self) -> bool:
        """Rows 1..N all arrived and nothing beyond N."""
        return self.missing_count == 0 and self.beyond_count == 0


@dataclass(frozen=True, slots=True)
class EndedTape:
    """What ingest did with a tape's last end marker: replays, re-pushes and retries reuse it."""

    partition: int
    end_offset: int
    created_at: datetime
    attempt: int
    failed: bool
    rows: int
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class ExpiredTape:
    """An open tape dropped because its end marker did not come within the TTL."""

    tape_id: str
    partition: int
    last_offset: int
    rows: int
    arrived_at: datetime
    expired_at: datetime
    ttl_seconds: int


def incomplete_message(tape_id: str, found: Completeness) -> str:
    """The user-facing reason a tape is incomplete: the first few rows at fault and how many."""
    parts: list[str] = []
    if found.missing_count:
        rows = _listed(found.missing, found.missing_count)
        parts.append(f"{found.missing_count} did not arrive (rows {rows})")
    if found.beyond_count:
        rows = _listed(found.beyond, found.beyond_count)
        parts.append(f"{found.beyond_count} arrived beyond it (rows {rows})")
    return (
        f"tape {tape_id!r} is incomplete: its end marker says {found.expected} rows but "
        + " and ".join(parts)
    )


def expired_message(tape: ExpiredTape) -> str:
    """The user-facing reason a late end marker fails its run: the tape must be pushed again."""
    return (
        f"tape {tape.tape_id!r} expired after {_counted(tape.ttl_seconds, 'second')} without an "
        f"end marker ({_counted(tape.rows, 'spooled row')} dropped); "
        "push the tape again: all of its rows, then its end marker"
    )


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _listed(rows: tuple[int, ...], count: int) -> str:
    shown = ", ".join(str(row) for row in rows)
    return f"{shown} and {count - len(rows)} more" if count > len(rows) else shown


def tape_attempt(previous: EndedTape | None, end_timestamp: datetime) -> tuple[datetime, int]:
    """A tape run's creation time and attempt for a new end marker.

    The first end marker creates the run at its own Kafka timestamp; pushing a completed tape
    again is the same run (same time, same attempt, same events); an end marker after a failed
    attempt starts the next attempt of that run.
    """
    if previous is None:
        return end_timestamp, 1
    return previous.created_at, previous.attempt + (1 if previous.failed else 0)


def already_handled(previous: EndedTape | None, partition: int, offset: int) -> bool:
    """Whether an end marker is a redelivery of one handled before (not a new push)."""
    return (
        previous is not None and previous.partition == partition and offset <= previous.end_offset
    )


class Spool:
    """Producer rows waiting for their end marker, and the tapes already ended."""

    def __init__(self, path: Path) -> None:
        self.connection = connect(path)

    def close(self) -> None:
        """Close the database."""
        self.connection.close()

    def add(self, rows: Iterable[SpooledRow], arrived_at: datetime) -> list[tuple[SpooledRow, str]]:
        """Spool rows read at `arrived_at` and note the offsets of each tape they open; commits.
        The rows refused, each with the reason, are returned to be dead-lettered.

        A tape's arrival moves only with an offset it has not seen: a replay keeps no tape alive.
        Rows of an expired tape up to its last offset replay the dropped push and stay dropped; a
        later row starts the tape afresh. A new row of a completed tape must be the row it
        completed with (an identical re-push); a row number pushed again with other fields is
        refused, unless the first came before the tape's failed end marker (a new push, which
        replaces it). Records up to a tape's last end marker replay history and are never refused.
        """
        rows = list(rows)
        tape_ids = {row.tape_id for row in rows}
        expired = self._expired_offsets(tape_ids) if rows else {}
        ended = {tape_id: self.ended(tape_id) for tape_id in tape_ids}
        refused: list[tuple[SpooledRow, str]] = []
        fresh: list[SpooledRow] = []
        for row in rows:
            if _replays_expired(row, expired):
                continue
            reason = self._against_completed(row, ended[row.tape_id])
            if reason is None:
                fresh.append(row)
            else:
                refused.append((row, reason))
        kept, replaced, conflicts = self._sort_repeats(fresh, ended)
        refused.extend(conflicts)
        accepted = kept + replaced
        tapes: dict[str, tuple[int, int, int]] = {}
        for row in accepted:
            partition, first, last = tapes.get(row.tape_id, (row.partition, row.offset, row.offset))
            tapes[row.tape_id] = (partition, min(first, row.offset), max(last, row.offset))
        with self.connection:
            for verb, group in (("INSERT OR IGNORE", kept), ("INSERT OR REPLACE", replaced)):
                self.connection.executemany(
                    f'{verb} INTO tape_rows (tape_id, row, fields, "offset") VALUES (?, ?, ?, ?)',
                    [(row.tape_id, row.row, orjson.dumps(row.fields), row.offset) for row in group],
                )
            self.connection.executemany(
                "INSERT INTO open_tapes (tape_id, partition, first_offset, last_offset, arrived_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tape_id) DO UPDATE SET"
                " first_offset = min(first_offset, excluded.first_offset),"
                " last_offset = max(last_offset, excluded.last_offset),"
                " arrived_at = CASE WHEN excluded.last_offset > last_offset"
                " THEN excluded.arrived_at ELSE arrived_at END",
                [
                    (tape_id, partition, first, last, arrived_at.timestamp())
                    for tape_id, (partition, first, last) in tapes.items()
                ],
            )
            self.connection.executemany(
                "DELETE FROM expired_tapes WHERE tape_id = ?",
                [(tape_id,) for tape_id in tapes.keys() & expired.keys()],
            )
        return refused

    def _against_completed(self, row: SpooledRow, previous: EndedTape | None) -> str | None:
        """Why a new row of a completed tape is refused (None: it is the row it completed with)."""
        if previous is None or previous.failed:
            return None
        if already_handled(previous, row.partition, row.offset):
            return None  # a replay of the pushes before the end marker
        found = self.completed_row(row.tape_id, row.row)
        if found is None:
            return None  # completed before row hashes were kept: nothing to compare with
        count, stored = found
        if row.row > count:
            return row_beyond_completed(row.tape_id, row.row, count)
        if stored != row_hash(row.fields):
            return row_differs_from_completed(row.tape_id, row.row)
        return None

    def _sort_repeats(
        self, rows: list[SpooledRow], ended: dict[str, EndedTape | None]
    ) -> tuple[list[SpooledRow], list[SpooledRow], list[tuple[SpooledRow, str]]]:
        """Rows to insert if new, rows that replace a failed push's row, and refused repeats."""
        spooled = self._spooled_rows(rows)
        seen: dict[tuple[str, int], SpooledRow] = {}
        kept: list[SpooledRow] = []
        replaced: list[SpooledRow] = []
        refused: list[tuple[SpooledRow, str]] = []
        for row in rows:
            key = (row.tape_id, row.row)
            earlier = seen.get(key)
            if earlier is not None:
                if earlier.offset != row.offset and earlier.fields != row.fields:
                    refused.append((row, row_pushed_twice(row.tape_id, row.row)))
                continue
            seen[key] = row
            found = spooled.get(key)
            if found is None or found[1] == row.offset or found[0] == row.fields:
                kept.append(row)
                continue
            previous = ended[row.tape_id]
            if previous is not None and already_handled(previous, row.partition, row.offset):
                kept.append(row)  # a replay: the spooled row stands
            elif previous is not None and previous.failed and _before(found[1], previous):
                replaced.append(row)  # a new push after a failed end marker replaces the row
            else:
                refused.append((row, row_pushed_twice(row.tape_id, row.row)))
        return kept, replaced, refused

    def _spooled_rows(
        self, rows: list[SpooledRow]
    ) -> dict[tuple[str, int], tuple[dict[str, str | None], int | None]]:
        """The spooled fields and offset of each (tape, row) among `rows` already spooled."""
        if not rows:
            return {}
        keys = orjson.dumps(sorted({(row.tape_id, row.row) for row in rows})).decode()
        found = self.connection.execute(
            'SELECT t.tape_id, t.row, t.fields, t."offset" FROM json_each(?) AS k'
            " JOIN tape_rows AS t ON t.tape_id = json_extract(k.value, '$[0]')"
            " AND t.row = json_extract(k.value, '$[1]')",
            (keys,),
        )
        return {
            (tape_id, row): (orjson.loads(fields), offset) for tape_id, row, fields, offset in found
        }

    def expire(
        self, now: datetime, ttl_seconds: int, partitions: Collection[int]
    ) -> list[ExpiredTape]:
        """Drop the open tapes of `partitions` whose newest row arrived over `ttl_seconds` before
        `now`: their rows and their hold on the commit. Each expiry is remembered; commits."""
        if not partitions:
            return []
        found = self.connection.execute(
            "SELECT tape_id, partition, last_offset, arrived_at FROM open_tapes"
            " WHERE arrived_at < ? AND partition IN (SELECT value FROM json_each(?))"
            " ORDER BY partition, first_offset",
            (now.timestamp() - ttl_seconds, orjson.dumps(sorted(partitions)).decode()),
        ).fetchall()
        expired: list[ExpiredTape] = []
        with self.connection:
            for tape_id, partition, last_offset, arrived_at in found:
                rows = self._scalar("SELECT count(*) FROM tape_rows WHERE tape_id = ?", tape_id)
                record = (tape_id, partition, last_offset, rows, arrived_at, now.timestamp())
                self.connection.execute(
                    "INSERT OR REPLACE INTO expired_tapes VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*record, ttl_seconds),
                )
                self.connection.execute("DELETE FROM tape_rows WHERE tape_id = ?", (tape_id,))
                self.connection.execute("DELETE FROM open_tapes WHERE tape_id = ?", (tape_id,))
                expired.append(_expired_tape(*record, ttl_seconds))
        return expired

    def expired(self, tape_id: str) -> ExpiredTape | None:
        """The tape's expiry, if it expired and has not been pushed again since."""
        found = self.connection.execute(
            "SELECT tape_id, partition, last_offset, rows, arrived_at, expired_at, ttl_seconds"
            " FROM expired_tapes WHERE tape_id = ?",
            (tape_id,),
        ).fetchone()
        return None if found is None else _expired_tape(*found)

    def _expired_offsets(self, tape_ids: Collection[str]) -> dict[str, tuple[int, int]]:
        """Where each expired tape among `tape_ids` had its last row: (partition, offset)."""
        found = self.connection.execute(
            "SELECT tape_id, partition, last_offset FROM expired_tapes"
            " WHERE tape_id IN (SELECT value FROM json_each(?))",
            (orjson.dumps(list(tape_ids)).decode(),),
        )
        return {tape_id: (partition, offset) for tape_id, partition, offset in found}

    def completeness(self, tape_id: str, expected: int, shown: int) -> Completeness:
        """Which of rows 1..expected are missing and which rows lie beyond, the first `shown`."""
        count = self._scalar(
            "SELECT count(*) FROM tape_rows WHERE tape_id = ? AND row <= ?", tape_id, expected
        )
        beyond_count = self._scalar(
            "SELECT count(*) FROM tape_rows WHERE tape_id = ? AND row > ?", tape_id, expected
        )
        beyond = self.connection.execute(
            "SELECT row FROM tape_rows WHERE tape_id = ? AND row > ? ORDER BY row LIMIT ?",
            (tape_id, expected, shown),
        ).fetchall()
        return Completeness(
            expected=expected,
            missing=tuple(self._first_missing(tape_id, expected, shown))
            if count < expected
            else (),
            missing_count=expected - count,
            beyond=tuple(row for (row,) in beyond),
            beyond_count=beyond_count,
        )

    def _first_missing(self, tape_id: str, expected: int, shown: int) -> Iterator[int]:
        found = 0
        want = 1
        cursor = self.connection.execute(
            "SELECT row FROM tape_rows WHERE tape_id = ? AND row <= ? ORDER BY row",
            (tape_id, expected),
        )
        for (row,) in cursor:
            while want < row and found < shown:
                yield want
                found += 1
                want += 1
            if found >= shown:
                return
            want = row + 1
        while want <= expected and found < shown:
            yield want
            found += 1
            want += 1

    def rows(self, tape_id: str) -> Iterator[tuple[int, dict[str, str | None]]]:
        """The tape's rows in row order, read lazily (constant memory)."""
        cursor = self.connection.execute(
            "SELECT row, fields FROM tape_rows WHERE tape_id = ? ORDER BY row", (tape_id,)
        )
        for row, fields in cursor:
            yield row, orjson.loads(fields)

    def columns(self, tape_id: str) -> list[str]:
        """The tape's column names in order of first appearance (row order, then field order)."""
        seen: dict[str, None] = {}
        for _, fields in self.rows(tape_id):
            for name in fields:
                seen.setdefault(name, None)
        return list(seen)

    def ended(self, tape_id: str) -> EndedTape | None:
        """What became of the tape's last end marker, if one was handled."""
        found = self.connection.execute(
            "SELECT partition, end_offset, created_at, attempt, failed, rows, digest"
            " FROM ended_tapes WHERE tape_id = ?",
            (tape_id,),
        ).fetchone()
        if found is None:
            return None
        partition, end_offset, created_at, attempt, failed, rows, digest = found
        return EndedTape(
            partition,
            end_offset,
            datetime.fromisoformat(created_at),
            attempt,
            bool(failed),
            rows,
            digest,
        )

    def end(self, tape_id: str, outcome: EndedTape, hashes: bytes | None = None) -> None:
        """Record how the tape ended and close it; a completed tape's rows are dropped, and its
        row hashes (`hashes`, when given) kept, so a later push can be compared with it.

        A failed tape keeps its rows, so missing rows pushed later complete it. The span from the
        tape's first row to its end marker is kept until the committed offset passes it.
        """
        with self.connection:
            self.connection.execute(
                "INSERT INTO tape_spans (partition, first_offset, end_offset) "
                "SELECT partition, first_offset, ? FROM open_tapes WHERE tape_id = ?",
                (outcome.end_offset, tape_id),
            )
            self.connection.execute(
                "INSERT OR REPLACE INTO ended_tapes"
                " (tape_id, partition, end_offset, created_at, attempt, failed, rows, digest)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tape_id,
                    outcome.partition,
                    outcome.end_offset,
                    outcome.created_at.isoformat(),
                    outcome.attempt,
                    int(outcome.failed),
                    outcome.rows,
                    outcome.digest,
                ),
            )
            self.connection.execute("DELETE FROM open_tapes WHERE tape_id = ?", (tape_id,))
            if not outcome.failed:
                self.connection.execute("DELETE FROM tape_rows WHERE tape_id = ?", (tape_id,))
            if hashes is not None and not outcome.failed:
                self.connection.execute(
                    "INSERT OR REPLACE INTO completed_rows VALUES (?, ?)", (tape_id, hashes)
                )
            elif outcome.failed:
                self.connection.execute("DELETE FROM completed_rows WHERE tape_id = ?", (tape_id,))

    def drop_push(self, tape_id: str) -> None:
        """Forget a refused push of a tape: its spooled rows and its hold on the commit."""
        with self.connection:
            self.connection.execute("DELETE FROM tape_rows WHERE tape_id = ?", (tape_id,))
            self.connection.execute("DELETE FROM open_tapes WHERE tape_id = ?", (tape_id,))

    def completed_row(self, tape_id: str, row: int) -> tuple[int, bytes | None] | None:
        """For a tape that completed with row hashes: its row count and row `row`'s hash."""
        found = self.connection.execute(
            "SELECT length(hashes) / ?, CASE WHEN ? * ? <= length(hashes)"
            " THEN substr(hashes, (? - 1) * ? + 1, ?) END FROM completed_rows WHERE tape_id = ?",
            (ROW_HASH_BYTES, row, ROW_HASH_BYTES, row, ROW_HASH_BYTES, ROW_HASH_BYTES, tape_id),
        ).fetchone()
        return None if found is None else (int(found[0]), found[1])

    def committable(self, partition: int, next_offset: int) -> int:
        """The highest offset up to `next_offset` that may be committed: inside no tape's span.

        A span runs from a tape's first row to its end marker (open tapes: to infinity); a commit
        point inside one would let a replay deliver that end marker without the rows before it.
        """
        point = next_offset
        while True:
            straddling = self._scalar(
                "SELECT min(first_offset) FROM ("
                " SELECT first_offset FROM open_tapes WHERE partition = ? AND first_offset < ?"
                " UNION ALL"
                " SELECT first_offset FROM tape_spans"
                " WHERE partition = ? AND first_offset < ? AND end_offset >= ?)",
                partition,
                point,
                partition,
                point,
                point,
            )
            if straddling is None:
                return point
            point = straddling

    def committed(self, partition: int, offset: int) -> None:
        """Forget spans wholly behind a committed offset: a replay never reaches them again."""
        with self.connection:
            self.connection.execute(
                "DELETE FROM tape_spans WHERE partition = ? AND end_offset < ?", (partition, offset)
            )

    def _scalar(self, sql: str, *params: Any) -> Any:
        return self.connection.execute(sql, params).fetchone()[0]


def _expired_tape(
    tape_id: str,
    partition: int,
    last_offset: int,
    rows: int,
    arrived_at: float,
    expired_at: float,
    ttl_seconds: int,
) -> ExpiredTape:
    """An `expired_tapes` row (times in Unix seconds) as an ExpiredTape."""
    return ExpiredTape(
        tape_id,
        partition,
        last_offset,
        rows,
        datetime.fromtimestamp(arrived_at, UTC),
        datetime.fromtimestamp(expired_at, UTC),
        ttl_seconds,
    )


def _before(offset: int | None, ended: EndedTape) -> bool:
    """Whether a spooled row's offset lies before a tape's end marker (unknown: before)."""
    return offset is None or offset < ended.end_offset


def _replays_expired(row: SpooledRow, expired: dict[str, tuple[int, int]]) -> bool:
    """Whether a row is a redelivery of an expired tape's dropped push."""
    where = expired.get(row.tape_id)
    return where is not None and row.partition == where[0] and row.offset <= where[1]


class StartedRuns:
    """Every run start seen on `runs.v1`, so a retry of the ingest phase knows what to redo."""

    def __init__(self, path: Path) -> None:
        self.connection = connect(path)

    def close(self) -> None:
        """Close the database."""
        self.connection.close()

    def record(self, started: RunStarted) -> None:
        """Remember (or refresh) a run's latest start."""
        with self.connection:
            self.connection.execute(
                "INSERT OR REPLACE INTO started_runs (run_id, event) VALUES (?, ?)",
                (str(started.run_id), encode(started)),
            )

    def get(self, run_id: UUID) -> RunStarted | None:
        """The run's latest start, if ingest has seen one."""
        found = self.connection.execute(
            "SELECT event FROM started_runs WHERE run_id = ?", (str(run_id),)
        ).fetchone()
        return None if found is None else decode(found[0], RunStarted)
