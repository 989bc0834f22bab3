"""Numbers written as text: the one parser every service uses, and the default IRR target."""

from decimal import Decimal, InvalidOperation

DEFAULT_IRR_TARGET = Decimal("8.05")
"""The IRR target of a run that names none (SPEC §3.5)."""


def finite_decimal(text: str | None) -> Decimal | None:
    """A finite Decimal from text, or None when the text is missing or is not a finite number."""
    if text is None:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
