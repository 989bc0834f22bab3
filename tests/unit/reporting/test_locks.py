"""A run's two advisory locks: completing and deciding it never share a key."""

from uuid import UUID

from services.reporting.locks import lock_key


def test_completing_and_deciding_a_run_take_different_keys_from_its_two_halves() -> None:
    run = UUID("00000000-0000-0001-ffff-ffffffffffff")
    assert lock_key(run, "complete") == 1
    assert lock_key(run, "decide") == -1
