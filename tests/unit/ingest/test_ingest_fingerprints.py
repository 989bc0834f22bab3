"""A completed tape's fingerprint: row hashes in row order and a digest with its parameters."""

from datetime import date
from decimal import Decimal

from contracts.loans import RunParams
from services.ingest.fingerprints import ROW_HASH_BYTES, TapeHasher, row_hash

PARAMS = RunParams(irr_target=Decimal("8.05"), pdate=date(2026, 11, 23))
ROWS = [(1, {"A": "1", "B": "x"}), (2, {"A": "2", "B": None})]


def fingerprint(rows: list[tuple[int, dict[str, str | None]]], params: RunParams = PARAMS) -> str:
    hasher = TapeHasher()
    assert list(hasher.passing(iter(rows))) == rows
    return hasher.fingerprint(len(rows), params).digest


def test_a_rows_hash_ignores_the_order_of_its_columns_but_not_their_text() -> None:
    assert row_hash({"A": "1", "B": "2"}) == row_hash({"B": "2", "A": "1"})
    assert row_hash({"A": "1", "B": "2"}) != row_hash({"A": "1", "B": "3"})
    assert len(row_hash({})) == ROW_HASH_BYTES


def test_the_hashes_hold_one_row_after_another() -> None:
    hasher = TapeHasher()
    list(hasher.passing(iter(ROWS)))

    hashes = hasher.fingerprint(2, PARAMS).hashes

    assert hashes == row_hash(ROWS[0][1]) + row_hash(ROWS[1][1])


def test_the_digest_changes_with_any_row_or_parameter_and_not_with_the_irr_written_longer() -> None:
    same = fingerprint(ROWS)

    assert fingerprint(ROWS) == same
    assert fingerprint([ROWS[0], (2, {"A": "2", "B": "changed"})]) != same
    assert fingerprint(ROWS[:1]) != same
    assert fingerprint(ROWS, PARAMS.model_copy(update={"pdate": date(2026, 11, 24)})) != same
    assert fingerprint(ROWS, PARAMS.model_copy(update={"irr_target": Decimal("8.050")})) == same
    assert fingerprint(ROWS, PARAMS.model_copy(update={"sales_team_id": "t1"})) != same
