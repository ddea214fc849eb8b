"""How an amount reads to a person: the one place the portal, the staff pages, summaries and the
authorization wording take it from.

Two renderings of the same rule: the page shows `$1,250.00`; the authorization the customer agrees
to, and the workflow summary an operator reads, name the currency code (`1,250.00 USD`), so they
never depend on a symbol's meaning.
"""

_SYMBOLS = {"USD": "$"}


def _digits(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100:,}.{cents % 100:02d}"


def format_amount(cents: int, currency: str) -> str:
    """For pages: `$1,250.00`, or `1,250.00 EUR` where we know no symbol."""
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{_digits(cents)}" if symbol else f"{_digits(cents)} {currency}"


def format_amount_with_code(cents: int, currency: str) -> str:
    """For the authorization wording and summaries: `1,250.00 USD`."""
    return f"{_digits(cents)} {currency}"
