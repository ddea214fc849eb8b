"""The shape of a one-time passcode, shared by the code's maker, its validator and its readers."""

import re

from domain.input_rules import OTP_CODE_DIGITS, is_well_formed_code

__all__ = ["OTP_CODE_DIGITS", "find_code", "is_well_formed_code"]

# ASCII digits only: `\d` would also find a run of Arabic-Indic digits.
_CODE_IN_TEXT = re.compile(rf"(?<![0-9])([0-9]{{{OTP_CODE_DIGITS}}})(?![0-9])")


def find_code(text: str) -> str | None:
    """The first code in a delivered message (the outbox, a stand-in's capture), as a person reads it."""
    match = _CODE_IN_TEXT.search(text)
    return match.group(1) if match else None
