"""The run's total_balance is exact (SPEC §3.7) or an error, never rounded."""

from decimal import Decimal

import pytest

from contracts.balance import MAX_BALANCE_DIGITS, BalanceNotExact, add_to_balance


def test_amounts_add_exactly_however_far_apart_their_sizes_within_the_limit() -> None:
    total = add_to_balance(add_to_balance(Decimal(0), Decimal("1e150")), Decimal("0.01"))
    assert str(total) == "1" + "0" * 150 + ".01"


def test_a_sum_of_exactly_the_digit_limit_is_kept() -> None:
    widest = Decimal(f"1e{MAX_BALANCE_DIGITS - 1}")
    assert str(add_to_balance(widest, Decimal(1))) == "1" + "0" * (MAX_BALANCE_DIGITS - 2) + "1"


def test_a_sum_needing_more_digits_than_the_limit_is_an_error_not_a_rounded_total() -> None:
    with pytest.raises(BalanceNotExact, match="more than 1000 digits"):
        add_to_balance(Decimal(f"1e{MAX_BALANCE_DIGITS}"), Decimal(1))


def test_a_sum_beyond_decimals_range_is_an_error() -> None:
    huge = Decimal("9e999999999999999999")
    with pytest.raises(BalanceNotExact):
        add_to_balance(huge, huge)


def test_two_decimal_amounts_keep_their_cents() -> None:
    assert str(add_to_balance(Decimal("100.50"), Decimal("1e2"))) == "200.50"
