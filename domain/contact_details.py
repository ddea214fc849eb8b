"""What staff may store as a contact's email and phone: the only places a code can ever go.

Pure rules shared by the staff API and the staff console, so both accept and refuse the same
input. A refusal names the field and says what is wrong in words staff can act on.
"""

import re
import unicodedata
from collections.abc import Mapping

EMAIL_MAX = 254
# One @, a dot in the domain, no spaces: the shape a provider will accept, not RFC 5322's.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class ContactDetailError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text)


def clean_email(raw: str | None) -> str | None:
    """A stored email (lower-cased domain kept as typed), None to clear; raises on a bad shape."""
    if raw is None:
        return None
    if has_control_characters(raw):
        raise ContactDetailError("email", "The email address contains characters that are not allowed.")
    value = raw.strip()
    if not value:
        return None
    if len(value) > EMAIL_MAX or not value.isascii() or not _EMAIL.match(value):
        raise ContactDetailError("email", "Enter an email address like name@example.com.")
    return value


def clean_phone(raw: str | None) -> str | None:
    """A stored phone in E.164 (`+15555550101`), None to clear; spaces, dashes and dots are dropped."""
    if raw is None:
        return None
    if has_control_characters(raw):
        raise ContactDetailError("phone", "The phone number contains characters that are not allowed.")
    value = re.sub(r"[\s().-]", "", raw)
    if not value:
        return None
    if not value.isascii() or not _E164.match(value):
        raise ContactDetailError(
            "phone", "Enter the phone number in international format, like +15555550101."
        )
    return value


def clean_contact_details(details: Mapping[str, str | None]) -> dict[str, str | None]:
    """The email and phone given (either may be absent), cleaned; `ContactDetailError` names the
    field at fault. One rule for the console, the staff API, /api/v1 and the CSV import."""
    cleaned: dict[str, str | None] = {}
    if "email" in details:
        cleaned["email"] = clean_email(details["email"])
    if "phone" in details:
        cleaned["phone"] = clean_phone(details["phone"])
    return cleaned
