"""Text bound for a spreadsheet: what a CSV a person opens must not run (OWASP CSV injection)."""

# A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def guard(text: str) -> str:
    """Text as a CSV cell: prefixed with `'` when a spreadsheet would run it."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text
