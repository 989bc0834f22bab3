"""The producer-tape spool: idempotent rows, completeness, and the offset it is safe to commit."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.ingest.spool import (
    EndedTape,
    Spool,
    SpooledRow,
    already_handled,
    incomplete_message,
    tape_attempt,
)

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "ingest.sqlite3")


def row(tape_id: str, number: int, offset: int, partition: int = 0) -> SpooledRow:
    return SpooledRow(tape_id, number, {"Loan Number": f"L-{number}"}, partition, offset)


def ended(offset: int, *, failed: bool = False, attempt: int = 1) -> EndedTape:
    return EndedTape(0, offset, AT, attempt, failed, 3)


def test_rows_arrive_in_any_order_and_a_repeat_changes_nothing(spool: Spool) -> None:
    spool.add([row("T", 3, 10), row("T", 1, 11), row("T", 2, 12), row("T", 1, 13)])

    assert [number for number, _ in spool.rows("T")] == [1, 2, 3]
    assert spool.completeness("T", 3, 10).complete


def test_completeness_names_the_first_missing_rows_and_counts_them_all(spool: Spool) -> None:
    spool.add([row("T", 2, 1), row("T", 5, 2), row("T", 9, 3)])

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
        ]
    )

    assert spool.columns("T") == ["A", "B", "C"]


def test_the_commit_stays_at_the_first_row_of_a_tape_still_open(spool: Spool) -> None:
    spool.add([row("T", 1, 5), row("T", 2, 9)])

    assert spool.committable(0, 12) == 5
    assert spool.committable(1, 12) == 12


def test_the_commit_never_lands_inside_an_ended_tape_whose_end_lies_beyond_it(
    spool: Spool,
) -> None:
    spool.add([row("B", 1, 50)])
    spool.add([row("A", 1, 100)])
    spool.end("B", ended(150))

    # A is open from 100; B ran from 50 to 150, so a replay from 100 would miss B's rows.
    assert spool.committable(0, 200) == 50


def test_an_ended_tape_no_longer_holds_the_commit_once_nothing_straddles_it(
    spool: Spool,
) -> None:
    spool.add([row("T", 1, 5), row("T", 2, 6)])
    spool.end("T", ended(7))

    assert spool.committable(0, 8) == 8
    spool.committed(0, 8)
    assert spool.committable(0, 8) == 8


def test_a_completed_tape_drops_its_rows_and_a_failed_one_keeps_them(spool: Spool) -> None:
    spool.add([row("OK", 1, 1), row("BAD", 2, 2)])

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
    first.add([row("T", 1, 5)])
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
