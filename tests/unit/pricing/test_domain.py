from decimal import Decimal

import pytest

from contracts.wire import Pricing
from services.pricing.domain import may_price, price
from tests.factories import loan_exception

IRR = Decimal("8.05")
SOFT_DATA = loan_exception(
    "missing_appraisal",
    category="data_quality",
    severity="soft",
    message="Appraisal value is missing or zero",
    rejection_criteria="notebook.appraisal_missing",
)
SOFT_PRICING = loan_exception(
    "note_rate_range",
    category="pricing",
    severity="soft",
    message="Note rate outside acceptable range (1%-15%)",
    rejection_criteria="notebook.note_rate_out_of_range",
)


def priced(note_rate: str, irr_target: Decimal = IRR) -> tuple[str, str]:
    pricing = price([], note_rate, irr_target)
    assert pricing is not None
    return pricing.pricing_spread, pricing.final_price


def test_prices_the_spread_over_the_irr_target_as_in_the_spec() -> None:
    assert price([], "7.786", IRR) == Pricing(pricing_spread="-0.2640", final_price="99.3400")


def test_writes_both_figures_with_exactly_four_decimals() -> None:
    assert priced("15") == ("6.9500", "117.3750")
    assert priced("1E+1") == ("1.9500", "104.8750")


@pytest.mark.parametrize(
    ("note_rate", "spread"),
    [
        ("8.05015", "0.0002"),  # 0.00015 -> up to the even 2
        ("8.05025", "0.0002"),  # 0.00025 -> down to the even 2
        ("8.04985", "-0.0002"),  # -0.00015 -> the even -2
        ("7.12345", "-0.9266"),  # -0.92655 -> the even 6
    ],
)
def test_spread_ties_round_half_to_even(note_rate: str, spread: str) -> None:
    assert priced(note_rate)[0] == spread


def test_final_price_ties_round_half_to_even() -> None:
    # spread 0.00002 -> price 100.00005 -> 100.0000; spread 0.00006 -> 100.00015 -> 100.0002
    assert priced("8.05002")[1] == "100.0000"
    assert priced("8.05006")[1] == "100.0002"


def test_final_price_is_computed_from_the_unrounded_spread() -> None:
    # spread -0.00005 rounds to 0.0000, but the price uses -0.00005: 99.999875 -> 99.9999
    assert priced("8.04995") == ("0.0000", "99.9999")


def test_a_spread_that_rounds_to_zero_is_never_negative_zero() -> None:
    assert priced("8.04999") == ("0.0000", "100.0000")


def test_a_price_that_rounds_to_zero_is_never_negative_zero() -> None:
    # irr 50, note rate 9.99999: spread -40.00001, price -0.000025 -> 0.0000
    assert priced("9.99999", Decimal("50")) == ("-40.0000", "0.0000")


def test_spread_is_exact_beyond_twenty_eight_significant_digits() -> None:
    # 0.00005 and a little more rounds up; a 28-digit context would have cut it to a tie first.
    assert priced("8.05005" + "0" * 30 + "1")[0] == "0.0001"


def test_the_run_irr_target_is_used() -> None:
    assert priced("7.786", Decimal("7")) == ("0.7860", "101.9650")


def test_a_loan_with_a_hard_exception_is_not_priced() -> None:
    assert price([loan_exception()], "7.786", IRR) is None


def test_a_loan_with_a_soft_pricing_exception_is_not_priced() -> None:
    assert price([SOFT_PRICING], "16", IRR) is None


def test_a_soft_data_quality_exception_does_not_stop_pricing() -> None:
    assert price([SOFT_DATA], "7.786", IRR) is not None
    assert may_price([SOFT_DATA])


@pytest.mark.parametrize("note_rate", [None, "abc", "NaN", "Infinity"])
def test_a_missing_or_unparsed_note_rate_is_not_priced(note_rate: str | None) -> None:
    assert price([], note_rate, IRR) is None
