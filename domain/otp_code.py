"""The shape of a one-time passcode, shared by the code's maker, its validator and its readers."""

import re

OTP_CODE_DIGITS = 6

_CODE_IN_TEXT = re.compile(rf"\b(\d{{{OTP_CODE_DIGITS}}})\b")


def is_well_formed_code(code: str) -> bool:
    return len(code) == OTP_CODE_DIGITS and code.isdigit()


def find_code(text: str) -> str | None:
    """The first code in a delivered message (the outbox, a stand-in's capture), as a person reads it."""
    match = _CODE_IN_TEXT.search(text)
    return match.group(1) if match else None
