"""The producer-tape spool: idempotent rows, completeness, the offset it is safe to commit, and
the expiry of tapes whose end marker never comes."""

import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from contracts.loans import RunParams
from services.ingest.fingerprints import TapeHasher
from services.ingest.spool import (
    EndedTape,
    ExpiredTape,
    Spool,
    SpooledRow,
    already_handled,
    expired_message,
    incomplete_message,
    tape_attempt,
)

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
TTL = 60


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "ingest.sqlite3")


def row(tape_id: str, number: int, offset: int, partition: int = 0) -> SpooledRow:
    return SpooledRow(tape_id, number, {"Loan Number": f"L-{number}"}, partition, offset)


def later(seconds: int) -> datetime:
    return AT + timedelta(seconds=seconds)


def ended(offset: int, *, failed: bool = False, attempt: int = 1) -> EndedTape:
    return EndedTape(0, offset, AT, attempt, failed, 3)


def test_rows_arrive_in_any_order_and_a_repeat_changes_nothing(spool: Spool) -> None:
    spool.add([row("T", 3, 10), row("T", 1, 11), row("T", 2, 12), row("T", 1, 13)], AT)

    assert [number for number, _ in spool.rows("T")] == [1, 2, 3]
    assert spool.completeness("T", 3, 10).complete


def test_completeness_names_the_first_missing_rows_and_counts_them_all(spool: Spool) -> None:
    spool.add([row("T", 2, 1), row("T", 5, 2), row("T", 9, 3)], AT)

    found = spool.completeness("T", 8, 3)

    assert (found.missing, found.missing_count) == ((1, 3, 4), 6)
    assert (found.beyond, found.beyond_count) == ((9,), 1)
    assert incomplete_message("T", found) == (
        "tape 'T' is incomplete: its end marker says 8 rows but 6 did not arrive "
        "(rows 1, 3, 4 and 3 more) and 1 arrived beyond it (rows 9)"
    )


def test_columns_are_listed_in_order_of_first_appearance(spool: Spool) -> None:
    spool.add(
        [
            SpooledRow("T", 2, {"B": "2", "C": "x"}, 0, 1),
            SpooledRow("T", 1, {"A": "1", "B": "1"}, 0, 2),
        ],
        AT,
    )

    assert spool.columns("T") == ["A", "B", "C"]


def test_the_commit_stays_at_the_first_row_of_a_tape_still_open(spool: Spool) -> None:
    spool.add([row("T", 1, 5), row("T", 2, 9)], AT)

    assert spool.committable(0, 12) == 5
    assert spool.committable(1, 12) == 12


def test_the_commit_never_lands_inside_an_ended_tape_whose_end_lies_beyond_it(
    spool: Spool,
) -> None:
    spool.add([row("B", 1, 50)], AT)
    spool.add([row("A", 1, 100)], AT)
    spool.end("B", ended(150))

    # A is open from 100; B ran from 50 to 150, so a replay from 100 would miss B's rows.
    assert spool.committable(0, 200) == 50


def test_an_ended_tape_no_longer_holds_the_commit_once_nothing_straddles_it(
    spool: Spool,
) -> None:
    spool.add([row("T", 1, 5), row("T", 2, 6)], AT)
    spool.end("T", ended(7))

    assert spool.committable(0, 8) == 8
    spool.committed(0, 8)
    assert spool.committable(0, 8) == 8


def test_a_completed_tape_drops_its_rows_and_a_failed_one_keeps_them(spool: Spool) -> None:
    spool.add([row("OK", 1, 1), row("BAD", 2, 2)], AT)

    spool.end("OK", ended(3))
    spool.end("BAD", ended(4, failed=True))

    assert list(spool.rows("OK")) == []
    assert [number for number, _ in spool.rows("BAD")] == [2]
    assert spool.ended("BAD") == ended(4, failed=True)


def test_a_tapes_first_end_creates_its_run_and_a_push_after_a_failure_is_the_next_attempt() -> None:
    later = datetime(2026, 11, 24, tzinfo=UTC)

    assert tape_attempt(None, later) == (later, 1)
    assert tape_attempt(ended(3), later) == (AT, 1)
    assert tape_attempt(ended(3, failed=True, attempt=2), later) == (AT, 3)


def test_the_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ingest.sqlite3"
    first = Spool(path)
    first.add([row("T", 1, 5)], AT)
    first.close()

    again = Spool(path)

    assert [number for number, _ in again.rows("T")] == [1]
    assert again.committable(0, 9) == 5


def test_an_end_marker_at_or_before_the_last_one_handled_is_a_redelivery() -> None:
    assert already_handled(ended(7), 0, 7)
    assert already_handled(ended(7), 0, 3)
    assert not already_handled(ended(7), 0, 8)
    assert not already_handled(ended(7), 1, 3)
    assert not already_handled(None, 0, 7)


def test_an_open_tape_expires_once_its_newest_row_arrived_longer_ago_than_the_ttl(
    spool: Spool,
) -> None:
    spool.add([row("T", 1, 5), row("T", 2, 6)], AT)

    assert spool.expire(later(TTL), TTL, {0}) == []
    (expired,) = spool.expire(later(TTL + 1), TTL, {0})

    assert expired == ExpiredTape("T", 0, 6, 2, AT, later(TTL + 1), TTL)
    assert spool.expired("T") == expired
    assert list(spool.rows("T")) == []
    assert spool.committable(0, 9) == 9


def test_a_new_row_keeps_a_tape_open_but_a_replayed_one_does_not(spool: Spool) -> None:
    spool.add([row("T", 1, 5), row("T", 2, 6)], AT)
    spool.add([row("T", 3, 7)], later(30))

    assert spool.expire(later(TTL + 1), TTL, {0}) == []
    spool.add([row("T", 1, 5), row("T", 2, 6), row("T", 3, 7)], later(TTL + 10))
    (expired,) = spool.expire(later(30 + TTL + 1), TTL, {0})

    assert (expired.arrived_at, expired.rows) == (later(30), 3)


def test_only_the_partitions_given_expire(spool: Spool) -> None:
    spool.add([row("ON-1", 1, 5, partition=1)], AT)
    spool.add([row("ON-0", 1, 5, partition=0)], AT)

    assert [tape.tape_id for tape in spool.expire(later(TTL + 1), TTL, {0})] == ["ON-0"]
    assert spool.expire(later(TTL + 1), TTL, set()) == []
    assert spool.committable(1, 9) == 5


def test_an_expired_tapes_replayed_rows_stay_dropped_and_a_later_row_starts_it_afresh(
    spool: Spool,
) -> None:
    spool.add([row("T", 1, 5), row("T", 2, 6)], AT)
    spool.expire(later(TTL + 1), TTL, {0})

    spool.add([row("T", 1, 5), row("T", 2, 6)], later(TTL + 2))

    assert list(spool.rows("T")) == []
    assert spool.committable(0, 9) == 9
    assert spool.expired("T") is not None

    spool.add([row("T", 1, 20)], later(TTL + 3))

    assert [number for number, _ in spool.rows("T")] == [1]
    assert spool.expired("T") is None
    assert spool.committable(0, 21) == 20


def test_an_expired_tape_says_how_long_it_waited_and_that_it_must_be_pushed_again() -> None:
    many = ExpiredTape("T-1", 0, 6, 2, AT, later(TTL + 1), 86_400)
    one = ExpiredTape("T-1", 0, 6, 1, AT, later(TTL + 1), 1)

    assert expired_message(many) == (
        "tape 'T-1' expired after 86400 seconds without an end marker (2 spooled rows dropped); "
        "push the tape again: all of its rows, then its end marker"
    )
    assert "after 1 second without an end marker (1 spooled row dropped)" in expired_message(one)


def test_a_spool_written_before_tapes_expired_is_upgraded_and_its_open_tapes_wait_a_full_ttl(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ingest.sqlite3"
    legacy = sqlite3.connect(path)
    legacy.executescript(
        "CREATE TABLE open_tapes (tape_id TEXT PRIMARY KEY, partition INTEGER NOT NULL,"
        " first_offset INTEGER NOT NULL);"
        "INSERT INTO open_tapes VALUES ('T', 0, 5);"
    )
    legacy.close()

    spool = Spool(path)
    spool.add([row("T", 1, 5)], AT)

    assert spool.committable(0, 9) == 5
    now = datetime.now(UTC)
    assert spool.expire(now, 3_600, {0}) == []
    assert [tape.tape_id for tape in spool.expire(now + timedelta(hours=2), 3_600, {0})] == ["T"]


# A tape cannot change: repeats with other fields, rows after a completed end marker -------------


def cells(number: int, text: str = "") -> dict[str, str | None]:
    return {"Loan Number": f"L-{number}{text}"}


def complete(spool: Spool, tape_id: str, rows: int, end_offset: int) -> None:
    """Spool rows 1..rows at offsets 0.., then end the tape as completed with its row hashes."""
    spool.add([SpooledRow(tape_id, n, cells(n), 0, n - 1) for n in range(1, rows + 1)], AT)
    hasher = TapeHasher()
    list(hasher.passing(spool.rows(tape_id)))
    params = RunParams(irr_target=Decimal("8.05"), pdate=date(2026, 11, 23))
    fingerprint = hasher.fingerprint(rows, params)
    outcome = EndedTape(0, end_offset, AT, 1, False, rows, fingerprint.digest)
    spool.end(tape_id, outcome, fingerprint.hashes)


def refused_rows(refused: list[tuple[SpooledRow, str]]) -> list[tuple[int, str]]:
    return [(found.row, reason) for found, reason in refused]


def test_a_row_number_pushed_again_with_other_fields_is_refused_and_the_first_kept(
    spool: Spool,
) -> None:
    assert spool.add([SpooledRow("T", 1, cells(1), 0, 1)], AT) == []

    refused = spool.add(
        [SpooledRow("T", 1, cells(1, "x"), 0, 2), SpooledRow("T", 2, cells(2), 0, 3)], AT
    )

    assert [number for number, _ in refused_rows(refused)] == [1]
    assert "push it under a new tape id" in refused[0][1]
    assert dict(spool.rows("T")) == {1: cells(1), 2: cells(2)}


def test_two_versions_of_a_row_in_one_poll_keep_the_first(spool: Spool) -> None:
    refused = spool.add(
        [SpooledRow("T", 1, cells(1), 0, 1), SpooledRow("T", 1, cells(1, "x"), 0, 2)], AT
    )

    assert [number for number, _ in refused_rows(refused)] == [1]
    assert dict(spool.rows("T")) == {1: cells(1)}


def test_the_same_row_again_in_another_column_order_is_no_conflict(spool: Spool) -> None:
    spool.add([SpooledRow("T", 1, {"A": "1", "B": "2"}, 0, 1)], AT)

    assert spool.add([SpooledRow("T", 1, {"B": "2", "A": "1"}, 0, 2)], AT) == []


def test_a_new_push_after_a_failed_end_marker_replaces_its_rows(spool: Spool) -> None:
    spool.add([SpooledRow("T", 1, cells(1, "\0"), 0, 1)], AT)
    spool.end("T", ended(2, failed=True))

    assert spool.add([SpooledRow("T", 1, cells(1), 0, 3)], AT) == []
    assert dict(spool.rows("T")) == {1: cells(1)}


def test_a_row_after_a_completed_end_marker_must_be_the_row_it_completed_with(
    spool: Spool,
) -> None:
    complete(spool, "T", 2, end_offset=2)

    refused = spool.add(
        [
            SpooledRow("T", 1, cells(1), 0, 3),
            SpooledRow("T", 2, cells(2, "changed"), 0, 4),
            SpooledRow("T", 3, cells(3), 0, 5),
        ],
        AT,
    )

    assert [number for number, _ in refused_rows(refused)] == [2, 3]
    differs, beyond = (reason for _, reason in refused)
    assert "differs from the row the tape completed with" in differs
    assert "completed as run" in beyond and "with 2 rows" in beyond
    assert all("push it under a new tape id" in reason for _, reason in refused)
    assert dict(spool.rows("T")) == {1: cells(1)}


def test_a_replay_of_a_completed_tapes_history_is_never_refused(spool: Spool) -> None:
    complete(spool, "T", 2, end_offset=2)

    replayed = spool.add(
        [SpooledRow("T", 1, cells(1, "old"), 0, 0), SpooledRow("T", 2, cells(2), 0, 1)], AT
    )

    assert replayed == []


def test_a_refused_push_is_forgotten_and_holds_no_commit(spool: Spool) -> None:
    complete(spool, "T", 1, end_offset=1)
    spool.add([SpooledRow("T", 1, cells(1), 0, 5)], AT)
    assert spool.committable(0, 9) == 5

    spool.drop_push("T")

    assert list(spool.rows("T")) == []
    assert spool.committable(0, 9) == 9


def test_a_spool_written_before_rows_had_offsets_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE tape_rows (tape_id TEXT NOT NULL, row INTEGER NOT NULL,"
            " fields BLOB NOT NULL, PRIMARY KEY (tape_id, row)) WITHOUT ROWID"
        )
        old.execute("INSERT INTO tape_rows VALUES ('T', 1, '{\"A\": \"1\"}')")
    old.close()

    spool = Spool(path)

    assert dict(spool.rows("T")) == {1: {"A": "1"}}
    assert spool.add([SpooledRow("T", 1, {"A": "2"}, 0, 4)], AT) != []
