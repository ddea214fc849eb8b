"""Keep provider error text safe to log and to carry into workflow history.

Providers sometimes echo the destination back ("The 'To' number +15555550101 is not a valid phone
number"). Anything that looks like an address or a phone number (or a code) is blanked before a
provider's words go into an exception message.
"""

import re

_EMAIL = re.compile(r"[^\s@'\"<>]+@[^\s@'\"<>]+")
_DIGITS = re.compile(r"\+?\d[\d\s().-]{3,}\d")

MAX_DETAIL = 200


def redact(text: str | None) -> str:
    if not text:
        return ""
    cleaned = _DIGITS.sub("•••", _EMAIL.sub("•••@•••", str(text)))
    cleaned = " ".join(cleaned.split())
    return cleaned[:MAX_DETAIL]
