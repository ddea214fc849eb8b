"""What the company may send us about its customers, contacts and invoices (SPEC §12): the rules
the API and the CSV import share, so a row the import takes is a body the API takes, and the reverse.

Pure: shapes and limits only. Whether a customer exists or an invoice may still change is the
service's question (`starters/company_records.py`), asked in PostgreSQL.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from domain.input_rules import has_control_characters

EXTERNAL_ID_PATTERN = r"^[\x21-\x7e]{1,64}$"
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)
NAME_MAX = 120
NUMBER_MAX = 64
INVOICE_KINDS = ("invoice", "deposit")
CURRENCIES = ("USD",)
# A cell a spreadsheet would run as a formula (OWASP "CSV injection"); tab and CR start some too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class RecordFieldError(ValueError):
    """One field of one record is not acceptable; `field` names it as the API and the CSV do."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def clean_external_id(value: str, field: str = "external_id") -> str:
    if not isinstance(value, str) or not _EXTERNAL_ID.match(value):
        raise RecordFieldError(field, f"{field} must be 1-64 printable ASCII characters without spaces.")
    return value


def clean_text(value: str, field: str, *, max_chars: int = NAME_MAX) -> str:
    """A required one-line text: trimmed, 1..max_chars, no control characters. Stored as given
    (a leading `=` included): formula cells are neutralised where a CSV is written, not here."""
    if not isinstance(value, str) or has_control_characters(value):
        raise RecordFieldError(field, f"{field} holds characters that are not allowed.")
    text = value.strip()
    if not text or len(text) > max_chars:
        raise RecordFieldError(field, f"{field} must be 1-{max_chars} characters.")
    return text


def check_amount_cents(amount_cents: int, max_cents: int, field: str = "amount_cents") -> int:
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise RecordFieldError(field, f"{field} must be a whole number of cents.")
    if not 1 <= amount_cents <= max_cents:
        raise RecordFieldError(field, f"{field} must be from 1 to {max_cents}.")
    return amount_cents


def parse_dollars(text: str, max_cents: int, field: str = "amount") -> int:
    """`1250.00` → 125000. Dollars with exactly two decimals, no sign, symbol or separator."""
    value = text.strip()
    if not re.fullmatch(r"\d{1,10}\.\d{2}", value):
        raise RecordFieldError(field, f"{field} must be dollars with two decimals, like 1250.00.")
    try:
        cents = int(Decimal(value) * 100)
    except InvalidOperation:
        raise RecordFieldError(field, f"{field} is not a number.") from None
    return check_amount_cents(cents, max_cents, field)


def parse_date(text: str, field: str = "due_date") -> date | None:
    value = text.strip()
    if not value:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise RecordFieldError(field, f"{field} must be an ISO date like 2026-01-31.")


def parse_flag(text: str, field: str) -> bool | None:
    """A CSV yes/no cell: true/false, yes/no, 1/0 (any case); empty means not given."""
    value = text.strip().lower()
    if not value:
        return None
    if value in ("true", "yes", "1", "y"):
        return True
    if value in ("false", "no", "0", "n"):
        return False
    raise RecordFieldError(field, f"{field} must be true or false.")


def check_choice(value: str, choices: tuple[str, ...], field: str) -> str:
    if value not in choices:
        raise RecordFieldError(field, f"{field} must be one of: {', '.join(choices)}.")
    return value


def neutralise_formula(text: str) -> str:
    """A cell for a CSV staff open in a spreadsheet: text that would run as a formula gets a
    leading apostrophe, so it shows as text (SPEC §12)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass(frozen=True)
class CustomerFields:
    external_id: str
    name: str


@dataclass(frozen=True)
class ContactFields:
    customer_external_id: str
    external_id: str
    name: str
    # Only the keys given: absent leaves the value alone, None clears it.
    details: Mapping[str, str | None] = field(default_factory=dict)
    primary: bool | None = None
    portal_payer: bool | None = None


@dataclass(frozen=True)
class InvoiceFields:
    external_id: str
    customer_external_id: str
    number: str
    kind: str
    amount_cents: int
    currency: str
    due_date: date | None = None


def checked_customer(external_id: str, name: str) -> CustomerFields:
    return CustomerFields(clean_external_id(external_id), clean_text(name, "name"))


def checked_contact(
    customer_external_id: str,
    external_id: str,
    name: str,
    details: Mapping[str, str | None],
    primary: bool | None,
    portal_payer: bool | None,
) -> ContactFields:
    return ContactFields(
        customer_external_id=clean_external_id(customer_external_id, "customer_external_id"),
        external_id=clean_external_id(external_id),
        name=clean_text(name, "name"),
        details=dict(details),
        primary=primary,
        portal_payer=portal_payer,
    )


def checked_invoice(
    external_id: str,
    customer_external_id: str,
    number: str,
    kind: str,
    amount_cents: int,
    currency: str,
    due_date: date | None,
    *,
    max_cents: int,
) -> InvoiceFields:
    return InvoiceFields(
        external_id=clean_external_id(external_id),
        customer_external_id=clean_external_id(customer_external_id, "customer_external_id"),
        number=clean_text(number, "number", max_chars=NUMBER_MAX),
        kind=check_choice(kind, INVOICE_KINDS, "kind"),
        amount_cents=check_amount_cents(amount_cents, max_cents),
        currency=check_choice(currency, CURRENCIES, "currency"),
        due_date=due_date,
    )
