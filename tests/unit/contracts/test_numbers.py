from decimal import Decimal

import pytest

from contracts.loans import RunParams
from contracts.numbers import DEFAULT_IRR_TARGET, finite_decimal
from contracts.wire import RunParams as WireRunParams


@pytest.mark.parametrize("text", ["7.786", "-0.5", "1E+5", "0", "100000.00"])
def test_finite_decimal_parses_a_number_written_as_text_exactly(text: str) -> None:
    assert str(finite_decimal(text)) == str(Decimal(text))


@pytest.mark.parametrize("text", [None, "", "abc", "7,5", "NaN", "sNaN", "Infinity", "-inf"])
def test_finite_decimal_is_none_for_missing_or_non_finite_text(text: str | None) -> None:
    assert finite_decimal(text) is None


def test_both_run_parameter_types_default_to_the_one_irr_target() -> None:
    pdate = "2026-11-23"
    assert RunParams(pdate=pdate).irr_target == DEFAULT_IRR_TARGET == Decimal("8.05")
    assert WireRunParams(pdate=RunParams(pdate=pdate).pdate).irr_target == DEFAULT_IRR_TARGET
