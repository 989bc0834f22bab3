"""IRR-target pricing of one loan (SPEC §3.5)."""

from collections.abc import Sequence
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
)

from contracts.numbers import finite_decimal
from contracts.wire import LoanException, Pricing

PRICE_BASE = Decimal(100)
SPREAD_MULTIPLIER = Decimal("2.5")
# Spread and price are computed without any precision limit, so the only rounding is _quantise's.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_HALF_EVEN)
_FOUR_PLACES = Decimal("0.0001")


def may_price(exceptions: Sequence[LoanException]) -> bool:
    """Whether a loan with these exceptions may be priced: no hard and no pricing exception."""
    return not any(e.severity == "hard" or e.category == "pricing" for e in exceptions)


def price(
    exceptions: Sequence[LoanException], note_rate: str | None, irr_target: Decimal
) -> Pricing | None:
    """The loan's spread and final price, or None when it may not (or cannot) be priced."""
    rate = finite_decimal(note_rate)
    # Most loans have no exception: skip may_price's scan for them.
    if rate is None or (exceptions and not may_price(exceptions)):
        return None
    spread = _EXACT.subtract(rate, irr_target)
    final_price = _EXACT.add(PRICE_BASE, _EXACT.multiply(SPREAD_MULTIPLIER, spread))
    return Pricing(pricing_spread=_quantise(spread), final_price=_quantise(final_price))


def _quantise(value: Decimal) -> str:
    # SPEC §3.5: half-even to exactly 4 decimals; a result that rounds to zero is written
    # 0.0000, never -0.0000 (copy_abs drops the sign Decimal keeps on a negative zero).
    # (_EXACT rounds half-even; its method spares the keyword arguments' parsing.)
    rounded = _EXACT.quantize(value, _FOUR_PLACES)
    return str(rounded if rounded else rounded.copy_abs())
