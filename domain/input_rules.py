"""The shape of everything a customer types (SPEC §11), in one place for the edge and the domain.

Digits are ASCII `[0-9]`, never `\\d` or `str.isdigit()`: both accept fullwidth (U+FF10..) and
Arabic-Indic (U+0660..) digits, which `int()` reads as numbers but the database and the processor do
not, so a bank number in them would pass here and break a debit half-way. Free text may hold any
printable character but no control character (NUL included) and no bidirectional override,
which would make a name read differently in the staff console than it is stored.

Plain functions (standard library only) so workflow code can use them; the pydantic types below
wrap the same functions for the portal's request bodies and the domain's update arguments.
"""

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field

ROUTING_NUMBER_DIGITS = 9
ACCOUNT_NUMBER_MIN_DIGITS = 4
ACCOUNT_NUMBER_MAX_DIGITS = 17
OTP_CODE_DIGITS = 6
ACCOUNT_HOLDER_MAX_CHARS = 120

_ABA_WEIGHTS = (3, 7, 1, 3, 7, 1, 3, 7, 1)
# Explicit code points: Python's `\s`, `\d` and friends are Unicode-aware.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Cc: C0/C1 controls and DEL; Cs: lone surrogates; Zl/Zp: line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def ascii_digits_pattern(min_digits: int, max_digits: int | None = None) -> str:
    upper = min_digits if max_digits is None else max_digits
    return f"^[0-9]{{{min_digits},{upper}}}$"


def is_ascii_digits(value: str, min_digits: int, max_digits: int | None = None) -> bool:
    upper = min_digits if max_digits is None else max_digits
    return min_digits <= len(value) <= upper and all("0" <= ch <= "9" for ch in value)


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in _REFUSED_CATEGORIES or ch in _BIDI_CONTROLS for ch in text)


def is_valid_aba_routing(number: str) -> bool:
    """Nine ASCII digits whose weighted sum (3, 7, 1) is a multiple of ten, and not all zeros."""
    if not is_ascii_digits(number, ROUTING_NUMBER_DIGITS):
        return False
    total = sum(int(d) * w for d, w in zip(number, _ABA_WEIGHTS, strict=True))
    return total % 10 == 0 and number != "0" * ROUTING_NUMBER_DIGITS


def is_valid_account_number(number: str) -> bool:
    return is_ascii_digits(number, ACCOUNT_NUMBER_MIN_DIGITS, ACCOUNT_NUMBER_MAX_DIGITS)


def is_well_formed_code(code: str) -> bool:
    return is_ascii_digits(code, OTP_CODE_DIGITS)


_CODE_SEPARATORS = re.compile(r"[ \-]", re.ASCII)


def normalize_typed_code(typed: str) -> str:
    """What a person typed (`123 456`, ` 123-456 `) as the six digits; ValueError if not a code."""
    if has_control_characters(typed):
        raise ValueError("the code must not contain control characters")
    cleaned = _CODE_SEPARATORS.sub("", typed)
    if not is_well_formed_code(cleaned):
        raise ValueError(f"the code is the {OTP_CODE_DIGITS} digits (0-9) from the message")
    return cleaned


# --- pydantic types ------------------------------------------------------------------------------


def _routing(value: str) -> str:
    if not is_valid_aba_routing(value):
        raise ValueError("routing number must be 9 digits (0-9) passing the ABA checksum")
    return value


def _account(value: str) -> str:
    if not is_valid_account_number(value):
        raise ValueError(
            f"account number must be {ACCOUNT_NUMBER_MIN_DIGITS} to {ACCOUNT_NUMBER_MAX_DIGITS} digits (0-9)"
        )
    return value


def _code(value: str) -> str:
    if not is_well_formed_code(value):
        raise ValueError(f"the code is {OTP_CODE_DIGITS} digits (0-9)")
    return value


def _plain_text(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control characters")
    return value


def _name(value: str) -> str:
    value = _plain_text(value).strip()
    if not value:
        raise ValueError("must not be blank")
    return value


RoutingNumber = Annotated[
    str,
    Field(json_schema_extra={"pattern": ascii_digits_pattern(ROUTING_NUMBER_DIGITS)}),
    AfterValidator(_routing),
]
AccountNumber = Annotated[
    str,
    Field(
        json_schema_extra={
            "pattern": ascii_digits_pattern(ACCOUNT_NUMBER_MIN_DIGITS, ACCOUNT_NUMBER_MAX_DIGITS)
        }
    ),
    AfterValidator(_account),
]
OtpCode = Annotated[
    str, Field(json_schema_extra={"pattern": ascii_digits_pattern(OTP_CODE_DIGITS)}), AfterValidator(_code)
]
PlainText = Annotated[str, AfterValidator(_plain_text)]
PersonName = Annotated[str, Field(min_length=1, max_length=ACCOUNT_HOLDER_MAX_CHARS), AfterValidator(_name)]
