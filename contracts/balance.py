"""A run's `total_balance` (SPEC §3.7): the exact sum of every parsed `loan_amount`.

Exact means never rounded. A sum that would need more than `MAX_BALANCE_DIGITS` significant
digits (amounts like `1e150` and `0.01` on one tape) or that leaves Decimal's range raises
`BalanceNotExact`, so the run fails saying so instead of reporting a rounded total.
"""

from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, Inexact, InvalidOperation, Overflow

MAX_BALANCE_DIGITS = 1_000
# Adding decimals costs what their digits cost, whatever the precision: a real tape's sum of
# two-decimal amounts never comes near the limit, and the traps make any rounding an error.
_EXACT = Context(
    prec=MAX_BALANCE_DIGITS,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[Inexact, Overflow, InvalidOperation],
)


class BalanceNotExact(ArithmeticError):
    """Adding an amount to the balance would round it or leave Decimal's range."""


def add_to_balance(balance: Decimal, amount: Decimal) -> Decimal:
    """`balance + amount`, exactly; BalanceNotExact when that cannot be."""
    try:
        return _EXACT.add(balance, amount)
    except (Inexact, Overflow) as error:
        raise BalanceNotExact(
            f"the total of loan_amount would need more than {MAX_BALANCE_DIGITS} digits to be exact"
        ) from error
